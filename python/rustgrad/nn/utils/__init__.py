"""``nn.utils``: gradient clipping and the variable-length sequence helpers of ``nn.utils.rnn``."""

from rustgrad.nn.utils import rnn
from rustgrad.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
