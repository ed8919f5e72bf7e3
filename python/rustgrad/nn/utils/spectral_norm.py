"""The hook-based ``spectral_norm``/``remove_spectral_norm``: ``w / sigma(w)``, with the largest
singular value ``sigma`` estimated by power iteration from random vectors ``u`` and ``v`` (drawn from
the global generator exactly as PyTorch draws them)."""

from __future__ import annotations

from typing import Any, TypeVar

import rustgrad
from rustgrad import Tensor
from rustgrad.nn import functional as F
from rustgrad.nn.modules.module import Module
from rustgrad.nn.parameter import Parameter

__all__ = [
    "SpectralNorm",
    "SpectralNormLoadStateDictPreHook",
    "SpectralNormStateDictHook",
    "remove_spectral_norm",
    "spectral_norm",
]


def _is_conv_transpose(module: Module) -> bool:
    """ConvTranspose layers normalize along dim 1 (their output channels)."""
    return type(module).__name__ in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def _normalize_into(out: Tensor, value: Tensor, eps: float) -> Tensor:
    """``F.normalize(value, dim=0, eps=eps, out=out)`` without autograd: ``out`` keeps its identity."""
    return out.copy_(F.normalize(value, dim=0, eps=eps))


class SpectralNorm:
    """The forward pre-hook of ``spectral_norm``: sets ``module.<name>`` to ``<name>_orig / sigma``,
    running ``n_power_iterations`` of power iteration first in training mode.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.spectral_norm.html"""

    _version: int = 1

    def __init__(
        self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        """``weight`` as a matrix with dimension ``dim`` as its rows."""
        weight_mat = weight
        if self.dim != 0:
            weight_mat = weight_mat.permute(self.dim, *[d for d in range(weight_mat.dim()) if d != self.dim])
        return weight_mat.reshape(weight_mat.size(0), -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        """``<name>_orig / sigma`` with ``sigma = u . (W v)``, after updating ``u`` and ``v`` in place
        when ``do_power_iteration``."""
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with rustgrad.no_grad():
                for _ in range(self.n_power_iterations):
                    v = _normalize_into(v, rustgrad.mv(weight_mat.t(), u), self.eps)
                    u = _normalize_into(u, rustgrad.mv(weight_mat, v), self.eps)
                # Clones, so that the in-place updates of the next call do not touch the tensors this
                # call's graph saved.
                u = u.clone()
                v = v.clone()
        sigma = rustgrad.dot(u, rustgrad.mv(weight_mat, v))
        return weight / sigma

    def remove(self, module: Module) -> None:
        """Replaces ``<name>_orig``, ``<name>_u`` and ``<name>_v`` by a parameter holding the current weight."""
        with rustgrad.no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    def _solve_v_and_rescale(self, weight_mat: Tensor, u: Tensor, target_sigma: Tensor) -> Tensor:
        # v with W v = sigma u (least squares), rescaled so that u . (W v) = target_sigma.
        wt = weight_mat.t()
        v = (
            rustgrad.linalg.solve(wt.mm(weight_mat), wt.mv(u))
            if weight_mat.size(0) >= weight_mat.size(1)
            else (wt.mv(rustgrad.linalg.solve(weight_mat.mm(wt), u)))
        )
        return v.mul_(target_sigma / rustgrad.dot(u, rustgrad.mv(weight_mat, v)))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        """Moves ``module.<name>`` to ``<name>_orig``, draws ``<name>_u`` and ``<name>_v``, and registers
        the hooks."""
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with rustgrad.no_grad():
            weight_mat = fn.reshape_weight_to_matrix(weight)
            h, w = weight_mat.size()
            u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        setattr(module, fn.name, weight.data)
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        module._register_state_dict_hook(SpectralNormStateDictHook(fn))
        module._register_load_state_dict_pre_hook(SpectralNormLoadStateDictPreHook(fn))
        return fn


class SpectralNormLoadStateDictPreHook:
    """Loads checkpoints written before the hook's version 1 (which stored ``<name>`` and no ``<name>_v``).
    https://pytorch.org/docs/stable/generated/torch.nn.utils.spectral_norm.html"""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        fn = self.fn
        version = local_metadata.get("spectral_norm", {}).get(fn.name + ".version", None)
        if version is not None and version >= 1:
            return
        weight_key = prefix + fn.name
        if (
            version is None
            and all(weight_key + s in state_dict for s in ("_orig", "_u", "_v"))
            and weight_key not in state_dict
        ):
            return  # written without metadata by a current version
        has_missing_keys = False
        for suffix in ("_orig", "", "_u"):
            key = weight_key + suffix
            if key not in state_dict:
                has_missing_keys = True
                if strict:
                    missing_keys.append(key)
        if has_missing_keys:
            return
        with rustgrad.no_grad():
            weight_orig = state_dict[weight_key + "_orig"]
            weight = state_dict.pop(weight_key)
            sigma = (weight_orig / weight).mean()
            weight_mat = fn.reshape_weight_to_matrix(weight_orig)
            u = state_dict[weight_key + "_u"]
            state_dict[weight_key + "_v"] = fn._solve_v_and_rescale(weight_mat, u, sigma)


class SpectralNormStateDictHook:
    """Records the hook's version in the state dict's metadata (``spectral_norm: {'<name>.version': 1}``).
    https://pytorch.org/docs/stable/generated/torch.nn.utils.spectral_norm.html"""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(self, module: Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
        if "spectral_norm" not in local_metadata:
            local_metadata["spectral_norm"] = {}
        key = self.fn.name + ".version"
        if key in local_metadata["spectral_norm"]:
            raise RuntimeError(f"Unexpected key in metadata['spectral_norm']: {key}")
        local_metadata["spectral_norm"][key] = self.fn._version


T_module = TypeVar("T_module", bound=Module)


def spectral_norm(
    module: T_module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> T_module:
    """Divides ``module.<name>`` by its spectral norm, estimated by power iteration before every forward
    (``n_power_iterations`` steps in training mode); ``dim`` (0, or 1 for ConvTranspose) indexes the rows.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.spectral_norm.html"""
    if dim is None:
        dim = 1 if _is_conv_transpose(module) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: T_module, name: str = "weight") -> T_module:
    """Undoes ``spectral_norm``: ``module.<name>`` is a plain parameter again.
    https://pytorch.org/docs/stable/generated/torch.nn.utils.remove_spectral_norm.html"""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            break
    else:
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    for k, hook in module._state_dict_hooks.items():
        if isinstance(hook, SpectralNormStateDictHook) and hook.fn.name == name:
            del module._state_dict_hooks[k]
            break
    for k, hook in module._load_state_dict_pre_hooks.items():
        if isinstance(hook, SpectralNormLoadStateDictPreHook) and hook.fn.name == name:
            del module._load_state_dict_pre_hooks[k]
            break
    return module
