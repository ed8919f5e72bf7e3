"""Help for humans: every public Tensor method and attribute, and every public function and class of
the main modules, carries its own docstring (so ``help(torch.Tensor.backward)`` and IDEs show what it
does), and the Tensor methods' docstrings link to PyTorch's page of the same name.

A new public method or function without a docstring fails here; add a ``///`` doc comment above the
Rust ``#[pymethods]``/``#[pyfunction]`` item or a docstring to the Python function.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import rustgrad

# The package and every public submodule (``rustgrad.nn``, ``rustgrad.optim.lr_scheduler``, ...).
MODULES = ["rustgrad"] + sorted(
    m.name
    for m in pkgutil.walk_packages(rustgrad.__path__, "rustgrad.")
    if not any(part.startswith("_") for part in m.name.split(".")[1:])
)

# Names that cannot carry a docstring of their own, with the reason.
ALLOWED: dict[str, str] = {}


def _generic_docs() -> set[str]:
    """Docstrings a name inherits from Python's builtins (``object.__init__``'s, ``int``'s, ...): not its own."""
    docs = set()
    for base in (object, type, int, float, bool, str, tuple, list, dict, property, staticmethod, classmethod):
        for name in dir(base):
            doc = getattr(getattr(base, name, None), "__doc__", None)
            if doc:
                docs.add(doc)
        if base.__doc__:
            docs.add(base.__doc__)
    return docs


GENERIC = _generic_docs()


def _has_own_doc(obj: object) -> bool:
    doc = getattr(obj, "__doc__", None)
    return isinstance(doc, str) and bool(doc.strip()) and doc not in GENERIC


def _tensor_attributes() -> list[tuple[str, object]]:
    return [
        (name, inspect.getattr_static(rustgrad.Tensor, name))
        for name in dir(rustgrad.Tensor)
        if not name.startswith("_")
    ]


def _public_callables(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    out = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.ismodule(obj) or not callable(obj):
            continue  # submodules, dtypes and constants
        if not getattr(obj, "__module__", "rustgrad").startswith("rustgrad"):
            continue  # re-exported from elsewhere (typing.Any, numpy, ...)
        out.append((name, obj))
    return out


def test_the_main_modules_are_checked() -> None:
    for name in ["rustgrad.nn", "rustgrad.nn.functional", "rustgrad.autograd", "rustgrad.optim", "rustgrad.utils.data"]:
        assert name in MODULES


def test_every_public_tensor_attribute_has_a_docstring() -> None:
    attrs = _tensor_attributes()
    assert len(attrs) > 150
    missing = [n for n, a in attrs if not _has_own_doc(a) and f"Tensor.{n}" not in ALLOWED]
    assert not missing, f"Tensor attributes without a docstring: {missing}"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_function_and_class_has_a_docstring(module_name: str) -> None:
    objs = _public_callables(module_name)
    missing = [n for n, o in objs if not _has_own_doc(o) and f"{module_name}.{n}" not in ALLOWED]
    assert not missing, f"{module_name}: public names without a docstring: {missing}"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_method_of_a_public_class_has_a_docstring(module_name: str) -> None:
    missing = []
    for name, obj in _public_callables(module_name):
        if not inspect.isclass(obj) or not obj.__module__.startswith("rustgrad") or obj is rustgrad.Tensor:
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            slot_docs = vars(obj).get("__slots__")
            documented = (
                _has_own_doc(value)
                or (isinstance(slot_docs, dict) and bool(slot_docs.get(attr)))  # help() shows these
                or f"{module_name}.{name}.{attr}" in ALLOWED
            )
            # methods, properties, and the attributes of Rust classes and slots (data descriptors)
            if (callable(value) or inspect.isdatadescriptor(value)) and not documented:
                missing.append(f"{name}.{attr}")
    assert not missing, f"{module_name}: public methods without a docstring: {missing}"


def test_tensor_method_docstrings_link_to_pytorch() -> None:
    unlinked = [
        n
        for n, a in _tensor_attributes()
        if _has_own_doc(a) and "https://pytorch.org/docs/" not in (a.__doc__ or "")
    ]
    assert not unlinked, f"Tensor docstrings without a link to PyTorch's documentation: {unlinked}"


def test_help_shows_a_signature_and_the_text() -> None:
    backward = rustgrad.Tensor.backward
    sig = inspect.signature(backward)
    assert list(sig.parameters) == ["self", "gradient", "retain_graph", "create_graph", "inputs"]
    assert "gradient" in backward.__doc__ and "torch.Tensor.backward.html" in backward.__doc__
    assert inspect.signature(rustgrad.Tensor.sum).parameters["keepdim"].default is False
    assert rustgrad.Tensor.grad.__doc__.startswith("The gradient")
    assert "Joins" in rustgrad.cat.__doc__
