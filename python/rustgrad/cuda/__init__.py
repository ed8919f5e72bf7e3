"""``torch.cuda`` on a CPU-only package: every answer is the one PyTorch built without CUDA gives.

Questions answer (``is_available()`` False, ``device_count()`` 0, memory counters 0); seeding is
accepted and ignored (PyTorch queues it for a CUDA initialisation that never comes); anything that
needs a GPU (``current_device``, ``synchronize``, ``get_device_name``, tensors on ``'cuda'``) raises
PyTorch's ``AssertionError: Torch not compiled with CUDA enabled``.
https://pytorch.org/docs/stable/cuda.html
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from rustgrad import _legacy
from rustgrad.cuda import amp

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "BFloat16Tensor",
    "BoolTensor",
    "ByteTensor",
    "CharTensor",
    "DoubleTensor",
    "FloatTensor",
    "HalfTensor",
    "IntTensor",
    "LongTensor",
    "ShortTensor",
    "amp",
    "current_device",
    "device",
    "device_count",
    "empty_cache",
    "get_arch_list",
    "get_device_capability",
    "get_device_name",
    "get_device_properties",
    "get_rng_state",
    "get_rng_state_all",
    "init",
    "initial_seed",
    "is_available",
    "is_bf16_supported",
    "is_initialized",
    "manual_seed",
    "manual_seed_all",
    "max_memory_allocated",
    "max_memory_reserved",
    "memory_allocated",
    "memory_reserved",
    "memory_stats",
    "reset_peak_memory_stats",
    "seed",
    "seed_all",
    "set_device",
    "set_rng_state",
    "set_rng_state_all",
    "synchronize",
]

FloatTensor = _legacy.CUDA_TYPES["FloatTensor"]
DoubleTensor = _legacy.CUDA_TYPES["DoubleTensor"]
HalfTensor = _legacy.CUDA_TYPES["HalfTensor"]
BFloat16Tensor = _legacy.CUDA_TYPES["BFloat16Tensor"]
ByteTensor = _legacy.CUDA_TYPES["ByteTensor"]
CharTensor = _legacy.CUDA_TYPES["CharTensor"]
ShortTensor = _legacy.CUDA_TYPES["ShortTensor"]
IntTensor = _legacy.CUDA_TYPES["IntTensor"]
LongTensor = _legacy.CUDA_TYPES["LongTensor"]
BoolTensor = _legacy.CUDA_TYPES["BoolTensor"]


def _not_compiled() -> AssertionError:
    return AssertionError("Torch not compiled with CUDA enabled")


def is_available() -> bool:
    """Whether a CUDA GPU can be used: never here. https://pytorch.org/docs/stable/generated/torch.cuda.is_available.html"""
    return False


def device_count() -> int:
    """The number of CUDA GPUs: 0. https://pytorch.org/docs/stable/generated/torch.cuda.device_count.html"""
    return 0


def is_initialized() -> bool:
    """Whether CUDA has been initialised: never. https://pytorch.org/docs/stable/generated/torch.cuda.is_initialized.html"""
    return False


def init() -> None:
    """Initialises CUDA: raises, there is none. https://pytorch.org/docs/stable/generated/torch.cuda.init.html"""
    raise _not_compiled()


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the current CUDA device supports bfloat16: False (no device).
    https://pytorch.org/docs/stable/generated/torch.cuda.is_bf16_supported.html"""
    return False


def get_arch_list() -> list:
    """The CUDA architectures this build was compiled for: none. https://pytorch.org/docs/stable/cuda.html"""
    return []


def manual_seed(seed: Any) -> None:
    """Seeds the current GPU's generator: with no GPU, accepted and ignored (as PyTorch without CUDA).
    https://pytorch.org/docs/stable/generated/torch.cuda.manual_seed.html"""
    int(seed)


def manual_seed_all(seed: Any) -> None:
    """Seeds every GPU's generator: accepted and ignored here.
    https://pytorch.org/docs/stable/generated/torch.cuda.manual_seed_all.html"""
    int(seed)


def seed() -> None:
    """Seeds the current GPU's generator randomly: ignored here. https://pytorch.org/docs/stable/generated/torch.cuda.seed.html"""


def seed_all() -> None:
    """Seeds every GPU's generator randomly: ignored here. https://pytorch.org/docs/stable/generated/torch.cuda.seed_all.html"""


def initial_seed() -> int:
    """The current GPU's seed: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.initial_seed.html"""
    raise _not_compiled()


def get_rng_state(device: Any = "cuda") -> Any:
    """A GPU generator's state: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.get_rng_state.html"""
    raise _not_compiled()


def set_rng_state(new_state: Any, device: Any = "cuda") -> None:
    """Sets a GPU generator's state: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.set_rng_state.html"""
    raise _not_compiled()


def get_rng_state_all() -> list:
    """The states of every GPU generator: an empty list. https://pytorch.org/docs/stable/generated/torch.cuda.get_rng_state_all.html"""
    return []


def set_rng_state_all(new_states: Any) -> None:
    """Sets the state of every GPU generator: none to set. https://pytorch.org/docs/stable/generated/torch.cuda.set_rng_state_all.html"""
    for _ in new_states:
        raise _not_compiled()


def current_device() -> int:
    """The index of the current GPU: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.current_device.html"""
    raise _not_compiled()


def set_device(device: Any) -> None:
    """Selects a GPU: raises (no GPU; PyTorch's CPU build fails here too, with an AttributeError from its
    C module). https://pytorch.org/docs/stable/generated/torch.cuda.set_device.html"""
    from rustgrad._glue import device as _device

    if isinstance(device, (str, _device)):
        d = _device(device)
        if d.type != "cuda":
            raise ValueError(f"Expected a cuda device, but got: {d}")
        index = d.index
    else:
        index = device
    if index is None or index >= 0:
        raise _not_compiled()


def synchronize(device: Any = None) -> None:
    """Waits for a GPU's work: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.synchronize.html"""
    raise _not_compiled()


def get_device_name(device: Any = None) -> str:
    """A GPU's name: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.get_device_name.html"""
    raise _not_compiled()


def get_device_properties(device: Any = None) -> Any:
    """A GPU's properties: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.get_device_properties.html"""
    raise _not_compiled()


def get_device_capability(device: Any = None) -> tuple:
    """A GPU's compute capability: raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.get_device_capability.html"""
    raise _not_compiled()


def empty_cache() -> None:
    """Releases the GPU memory cache: nothing to release. https://pytorch.org/docs/stable/generated/torch.cuda.empty_cache.html"""


def memory_stats(device: Any = None) -> OrderedDict:
    """The GPU allocator's statistics: empty (CUDA never initialised). https://pytorch.org/docs/stable/generated/torch.cuda.memory_stats.html"""
    return OrderedDict()


def memory_allocated(device: Any = None) -> int:
    """Bytes held by tensors on a GPU: 0. https://pytorch.org/docs/stable/generated/torch.cuda.memory_allocated.html"""
    return 0


def max_memory_allocated(device: Any = None) -> int:
    """Peak bytes held by tensors on a GPU: 0. https://pytorch.org/docs/stable/generated/torch.cuda.max_memory_allocated.html"""
    return 0


def memory_reserved(device: Any = None) -> int:
    """Bytes reserved by the GPU allocator: 0. https://pytorch.org/docs/stable/generated/torch.cuda.memory_reserved.html"""
    return 0


def max_memory_reserved(device: Any = None) -> int:
    """Peak bytes reserved by the GPU allocator: 0. https://pytorch.org/docs/stable/generated/torch.cuda.max_memory_reserved.html"""
    return 0


def reset_peak_memory_stats(device: Any = None) -> None:
    """Resets the GPU allocator's peaks: raises (no GPU; PyTorch's CPU build fails here too, with an
    AttributeError from its C module). https://pytorch.org/docs/stable/generated/torch.cuda.reset_peak_memory_stats.html"""
    raise _not_compiled()


class device:
    """``torch.cuda.device(idx)``: a context manager selecting a GPU. Building one works; entering one
    with an index raises (no GPU). https://pytorch.org/docs/stable/generated/torch.cuda.device.html"""

    def __init__(self, device: Any) -> None:
        self.idx = device.index if hasattr(device, "index") else device
        self.prev_idx = -1

    def __enter__(self) -> Self:
        if self.idx is None or (isinstance(self.idx, int) and self.idx >= 0):
            raise _not_compiled()
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None
