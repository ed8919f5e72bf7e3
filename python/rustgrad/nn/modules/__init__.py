"""The layers of ``rustgrad.nn``, one file per family as in ``torch.nn.modules``."""

from rustgrad.nn.modules.activation import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from rustgrad.nn.modules.container import ModuleDict, ModuleList, Sequential
from rustgrad.nn.modules.dropout import Dropout
from rustgrad.nn.modules.flatten import Flatten
from rustgrad.nn.modules.linear import Identity, Linear
from rustgrad.nn.modules.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from rustgrad.nn.modules.module import Module
from rustgrad.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "GRUCell",
    "Identity",
    "L1Loss",
    "LSTMCell",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
