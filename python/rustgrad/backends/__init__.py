"""``torch.backends``: the flags and build questions of PyTorch's compute backends, answered for
rustgrad, which computes on the CPU with its own Rust kernels (no CUDA, cuDNN, MPS, oneDNN, MKL or
OpenMP). The flags (``cudnn.benchmark``, ``cuda.matmul.allow_tf32``...) keep PyTorch's defaults and
can be set; they change nothing here. https://pytorch.org/docs/stable/backends.html"""

from rustgrad.backends import cpu, cuda, cudnn, mha, mkl, mkldnn, mps, openmp, opt_einsum

__all__ = ["cpu", "cuda", "cudnn", "mha", "mkl", "mkldnn", "mps", "openmp", "opt_einsum"]
