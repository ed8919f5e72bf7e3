"""``rustgrad.optim``: optimizers that update parameters from their ``.grad``, and lr schedulers."""

from rustgrad.optim import lr_scheduler, swa_utils
from rustgrad.optim._adafactor import Adafactor
from rustgrad.optim._muon import Muon
from rustgrad.optim.adadelta import Adadelta
from rustgrad.optim.adagrad import Adagrad
from rustgrad.optim.adam import Adam
from rustgrad.optim.adamax import Adamax
from rustgrad.optim.adamw import AdamW
from rustgrad.optim.asgd import ASGD
from rustgrad.optim.lbfgs import LBFGS
from rustgrad.optim.nadam import NAdam
from rustgrad.optim.optimizer import Optimizer
from rustgrad.optim.radam import RAdam
from rustgrad.optim.rmsprop import RMSprop
from rustgrad.optim.rprop import Rprop
from rustgrad.optim.sgd import SGD
from rustgrad.optim.sparse_adam import SparseAdam

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Muon",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SparseAdam",
    "lr_scheduler",
    "swa_utils",
]
