"""``rustgrad.optim``: optimizers that update parameters from their ``.grad``, and lr schedulers."""

from rustgrad.optim import lr_scheduler
from rustgrad.optim.adadelta import Adadelta
from rustgrad.optim.adagrad import Adagrad
from rustgrad.optim.adam import Adam
from rustgrad.optim.adamax import Adamax
from rustgrad.optim.adamw import AdamW
from rustgrad.optim.lbfgs import LBFGS
from rustgrad.optim.nadam import NAdam
from rustgrad.optim.optimizer import Optimizer
from rustgrad.optim.radam import RAdam
from rustgrad.optim.rmsprop import RMSprop
from rustgrad.optim.sgd import SGD

__all__ = [
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "lr_scheduler",
]
