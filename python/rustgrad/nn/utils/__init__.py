"""``nn.utils``: gradient clipping and the variable-length sequence helpers of ``nn.utils.rnn``."""

from rustgrad.nn.utils import rnn

"""``nn.utils``: gradient clipping, parameter vectors, parametrizations and the weight/spectral norm hooks."""

from rustgrad.nn.utils import parametrizations, parametrize
from rustgrad.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from rustgrad.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters
from rustgrad.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm
from rustgrad.nn.utils.weight_norm import remove_weight_norm, weight_norm

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "parametrizations",
    "parametrize",
    "remove_spectral_norm",
    "remove_weight_norm",
    "rnn",
    "spectral_norm",
    "vector_to_parameters",
    "weight_norm",
]
