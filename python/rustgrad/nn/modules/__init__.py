"""The layers of ``rustgrad.nn``, one file per family as in ``torch.nn.modules``."""

from rustgrad.nn.modules import activation, conv, normalization, padding, pooling, sparse
from rustgrad.nn.modules.activation import *
from rustgrad.nn.modules.container import ModuleDict, ModuleList, Sequential
from rustgrad.nn.modules.conv import *
from rustgrad.nn.modules.dropout import Dropout
from rustgrad.nn.modules.flatten import Flatten
from rustgrad.nn.modules.linear import Identity, Linear
from rustgrad.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from rustgrad.nn.modules.module import Module
from rustgrad.nn.modules.normalization import *
from rustgrad.nn.modules.padding import *
from rustgrad.nn.modules.pooling import *
from rustgrad.nn.modules.sparse import *

__all__ = sorted(
    activation.__all__ + conv.__all__ + normalization.__all__ + padding.__all__ + pooling.__all__ + sparse.__all__
) + [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "L1Loss",
    "Linear",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "HuberLoss",
    "SmoothL1Loss",
    "Sequential",
]
