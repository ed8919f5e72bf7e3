"""``rustgrad.optim``: optimizers that update parameters from their ``.grad``, and lr schedulers."""

from rustgrad.optim import lr_scheduler
from rustgrad.optim.adam import Adam
from rustgrad.optim.adamw import AdamW
from rustgrad.optim.optimizer import Optimizer
from rustgrad.optim.rmsprop import RMSprop
from rustgrad.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
