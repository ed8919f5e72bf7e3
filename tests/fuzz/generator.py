"""Seeded random programs over rustgrad's public API.

The generator keeps a rough model of every variable (shape, dtype, requires_grad, leaf) so most
statements are valid; the model is an approximation, so some statements are invalid by accident,
which is fine: both libraries must then raise the same exception class. About one statement in
ten is deliberately bad (:meth:`Generator.bad_statement`): an argument swapped for a wrong type,
``None``, NaN, an out-of-range dim or a huge size, or a factory call with impossible sizes.

Only callables that rustgrad's ``dir()`` lists are generated (``api``, from the rustgrad worker's
``ready`` message); Python protocols (``len``, ``in``, ``iter``...) always exist.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Callable

from .program import DType, Ref, Stmt

FLOAT_DTYPES = ("float32", "float64")
DTYPES = ("float32", "float64", "int64", "bool")
_RANK = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}

UNARY_FLOAT = (
    "exp",
    "log",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "erf",
    "log1p",
    "expm1",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "rsqrt",
    "log2",
    "log10",
    "exp2",
    "reciprocal",
)
UNARY_KEEP = ("abs", "neg", "sign", "floor", "ceil", "round", "trunc", "square", "relu")
UNARY_BOOL = ("isnan", "isinf", "isfinite")
BINARY_ARITH = ("add", "sub", "mul", "div", "pow", "true_divide")
BINARY_CMP = ("eq", "ne", "lt", "le", "gt", "ge")
BINOP_OF = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "silu", "gelu", "leaky_relu", "softplus", "logsigmoid")

FLOAT_POOL = (-2.5, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, -0.75, 0.1)
BAD_VALUES = (
    None,
    "abc",
    -1,
    99,
    -99,
    2**63,
    2**40,
    float("nan"),
    float("inf"),
    -float("inf"),
    [],
    (),
    0.5,
    True,
    [1, "a"],
    1e300,
    DType("int64"),
    DType("bool"),
)
BAD_FACTORIES = (
    ("zeros", (2**40, 2**40), {}),
    ("zeros", (2**24, 2**24), {"dtype": DType("float64")}),
    ("ones", (2**62,), {}),
    ("zeros", (-1,), {}),
    ("ones", (2, -3), {}),
    ("arange", (0, 1e16), {}),
    ("arange", (0, 1e20), {}),
    ("arange", (0, 10, 0), {}),
    ("arange", (0, float("nan")), {}),
    ("arange", (0.0, float("inf")), {}),
    ("arange", (10, 0), {}),
    ("arange", (0, 10, -1), {}),
    ("arange", (0, 2**63), {}),
    ("linspace", (0, 1, -1), {}),
    ("linspace", (0, 1, 2**40), {}),
    ("eye", (-1,), {}),
    ("eye", (2**40,), {}),
    ("eye", (3, -2), {}),
    ("rand", (2**40, 2**40), {}),
    ("randn", (-2,), {}),
    ("randn", (3,), {"dtype": DType("int64")}),
    ("rand", (2,), {"dtype": DType("bool")}),
    ("randint", (5, 3, (2,)), {}),
    ("randint", (0, 2**70, (2,)), {}),
    ("randint", (0, 5, (-1,)), {}),
    ("randperm", (-1,), {}),
    ("randperm", (2**40,), {}),
    ("full", ((2,), float("nan")), {}),
    ("full", ((2,), 2**70), {"dtype": DType("int64")}),
    ("full", ((2, 2), float("inf")), {"dtype": DType("int64")}),
    ("tensor", ([[1, 2], [3]],), {}),
    ("tensor", ([],), {}),
    ("tensor", ([[]],), {}),
    ("tensor", ([[], []],), {"requires_grad": True}),
    ("tensor", (float("inf"),), {}),
    ("tensor", ([1, 2],), {"dtype": DType("int64"), "requires_grad": True}),
    ("tensor", ([True, False],), {"requires_grad": True}),
    ("tensor", ("a",), {}),
    ("tensor", ([1, None],), {}),
    ("tensor", (2**70,), {}),
    ("tensor", ([2**63 - 1, -(2**63)],), {}),
    ("tensor", ([float("nan"), 1.0],), {"dtype": DType("int64")}),
    ("tensor", ([1.5, 2.5],), {"dtype": "float32"}),
    ("zeros", (0, 3), {"requires_grad": True}),
    ("zeros", ((2, 3), 4), {}),
    ("ones", (2.5,), {}),
    ("ones", (3,), {"dtype": DType("int64"), "requires_grad": True}),
    ("zeros", ((),), {}),
    ("full", ((), True), {}),
    ("tensor", ([[1.0, 2.0]],), {"dtype": DType("bool")}),
)


@dataclass
class Meta:
    """The generator's model of a tensor variable."""

    shape: tuple
    dtype: str
    rg: bool = False
    leaf: bool = True

    @property
    def ndim(self) -> int:
        """Number of dims."""
        return len(self.shape)

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        """Whether the dtype is floating point."""
        return self.dtype in FLOAT_DTYPES


def promote(a: str, b: str) -> str:
    """Type promotion of two tensor dtypes (ignoring the 0-d rule)."""
    return a if _RANK[a] >= _RANK[b] else b


def promote_scalar(dtype: str, value: object) -> str:
    """Dtype of ``tensor op python scalar``."""
    if isinstance(value, bool):
        return dtype
    if isinstance(value, float) and dtype in ("bool", "int64"):
        return "float32"
    if isinstance(value, int) and dtype == "bool":
        return "int64"
    return dtype


def broadcast(a: tuple, b: tuple) -> tuple | None:
    """The broadcast shape of ``a`` and ``b`` (``None`` if incompatible)."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            return None
        out.append(max(x, y) if x != 0 and y != 0 else 0)
    return tuple(reversed(out))


class Generator:
    """Builds one random program: ``Generator(rng, api).program(n_statements)``."""

    def __init__(self, rng: random.Random, api: dict | None = None, bad_rate: float = 0.1):
        self.rng = rng
        self.api = api
        self.bad_rate = bad_rate
        self.vars: dict = {}
        self.seqs: dict = {}
        self.counter = 0
        self.grad_enabled = True
        self.current: list = []
        self.ops = self._op_table()

    # ------------------------------------------------------------------ helpers

    def has(self, where: str, name: str) -> bool:
        """Whether rustgrad's ``dir()`` lists ``name`` (``where``: module, Tensor, nn.functional...)."""
        if self.api is None:
            return True
        return name in self.api.get(where, ())

    def new_name(self) -> str:
        """A fresh variable name."""
        self.counter += 1
        return f"v{self.counter}"

    def emit(self, stmt: Stmt, meta: Meta | list | None = None) -> Stmt:
        """Appends ``stmt`` and records the model of its result."""
        self.current.append(stmt)
        if stmt.target and isinstance(meta, Meta):
            self.vars[stmt.target] = meta
            self.seqs.pop(stmt.target, None)
        elif stmt.target and isinstance(meta, list):
            self.seqs[stmt.target] = meta
            self.vars.pop(stmt.target, None)
        return stmt

    def call(self, fn: str, args: tuple = (), kwargs: dict | None = None, meta=None) -> Stmt:
        """Emits ``v = torch.fn(...)``."""
        return self.emit(Stmt("call", fn, tuple(args), kwargs or {}, self.new_name()), meta)

    def method(self, recv: str, fn: str, args: tuple = (), kwargs: dict | None = None, meta=None) -> Stmt:
        """Emits ``v = recv.fn(...)``."""
        stmt = Stmt("method", fn, (Ref(recv), *args), kwargs or {}, self.new_name())
        return self.emit(stmt, meta)

    def pick(self, pred: Callable[[Meta], bool] | None = None) -> tuple | None:
        """A random tensor variable (recent ones more likely) matching ``pred``."""
        names = [n for n, m in self.vars.items() if pred is None or pred(m)]
        if not names:
            return None
        idx = len(names) - 1 - min(int(self.rng.expovariate(0.4)), len(names) - 1)
        name = names[idx] if self.rng.random() < 0.7 else self.rng.choice(names)
        return name, self.vars[name]

    def out_meta(self, shape: tuple, dtype: str, *inputs: Meta) -> Meta:
        """Model of an op's result: requires grad if grad mode is on and a float input does."""
        rg = self.grad_enabled and dtype in FLOAT_DTYPES and any(m.rg for m in inputs)
        return Meta(tuple(max(0, int(s)) for s in shape), dtype, rg, not rg)

    def rand_shape(self, max_ndim: int = 3, allow_zero: bool = True) -> tuple:
        """A small random shape (sometimes 0-d, rarely with a zero-size dim)."""
        ndim = self.rng.choices(range(max_ndim + 1), weights=[3, 6, 6, 3, 1][: max_ndim + 1])[0]
        return tuple(
            0 if allow_zero and self.rng.random() < 0.03 else self.rng.randint(1, 4) for _ in range(ndim)
        )

    def size_args(self, shape: tuple) -> tuple:
        """Size arguments of a factory: ``(2, 3)`` or ``((2, 3),)``; 0-d always as ``((),)``."""
        return (shape,) if not shape or self.rng.random() < 0.3 else shape

    def broadcastable_shape(self, shape: tuple) -> tuple:
        """A shape that broadcasts with ``shape``."""
        suffix = list(shape[len(shape) - self.rng.randint(0, len(shape)) :]) if shape else []
        out = [1 if self.rng.random() < 0.3 else s for s in suffix]
        if self.rng.random() < 0.15:
            out = [self.rng.randint(1, 3)] + out if not shape or self.rng.random() < 0.5 else out
        return tuple(out)

    def scalar(self, dtype: str = "float32") -> object:
        """A Python scalar suited to ``dtype``."""
        r = self.rng.random()
        if dtype == "bool" and r < 0.5:
            return self.rng.choice([True, False])
        if dtype in ("int64", "bool") and r < 0.8:
            return self.rng.randint(-3, 4)
        if r < 0.25:
            return self.rng.randint(-3, 4)
        return self.rng.choice(FLOAT_POOL)

    def data(self, shape: tuple, kind: str) -> object:
        """Nested-list literal data for ``tensor()``."""
        if not shape:
            return self.element(kind)
        return [self.data(shape[1:], kind) for _ in range(shape[0])]

    def element(self, kind: str) -> object:
        """One literal element of ``kind`` (float, int, bool)."""
        if kind == "bool":
            return self.rng.random() < 0.5
        if kind == "int":
            return self.rng.randint(-4, 5)
        if self.rng.random() < 0.02:
            return self.rng.choice([float("nan"), float("inf"), -float("inf")])
        if self.rng.random() < 0.5:
            return self.rng.choice(FLOAT_POOL)
        return round(self.rng.uniform(-3, 3), 3)

    def dim(self, ndim: int) -> int:
        """A valid dim index (negative half the time) for an ``ndim``-d tensor (0-d: 0 or -1)."""
        n = max(ndim, 1)
        d = self.rng.randrange(n)
        return d - n if self.rng.random() < 0.4 else d

    @staticmethod
    def norm_dim(d: int, ndim: int) -> int:
        """``d`` as a non-negative index."""
        return d + max(ndim, 1) if d < 0 else d

    # ------------------------------------------------------------------ program

    def program(self, n_statements: int, seed: int) -> list:
        """A program: ``manual_seed``, a few factories, then ``n_statements`` random statements."""
        self.current = []
        self.emit(
            Stmt("call", "manual_seed", (seed,), {}, self.new_name() if self.rng.random() < 0.02 else None)
        )
        for _ in range(self.rng.randint(2, 4)):
            self.factory()
        for _ in range(n_statements):
            self.statement()
        return self.current

    def statement(self) -> None:
        """One statement: bad with probability ``bad_rate``, else a weighted random op."""
        if self.rng.random() < self.bad_rate:
            self.bad_statement()
            return
        weights, funcs = zip(*self.ops)
        for _ in range(8):
            func = self.rng.choices(funcs, weights=weights)[0]
            if self.attempt(func):
                return
        self.factory()

    def attempt(self, func: Callable[[], bool]) -> bool:
        """Runs an op generator; ``False`` if it declined or its shape model hit a case it cannot handle."""
        try:
            return func() is not False
        except (ValueError, IndexError, KeyError, ZeroDivisionError, TypeError):
            return False

    def bad_statement(self) -> None:
        """A deliberately bad statement: a bad factory call or a mutated valid statement."""
        if self.rng.random() < 0.35:
            fn, args, kwargs = self.rng.choice(BAD_FACTORIES)
            if self.has("module", fn):
                self.emit(Stmt("call", fn, args, dict(kwargs), self.new_name()))
                return
        saved = (dict(self.vars), dict(self.seqs), len(self.current))
        weights, funcs = zip(*self.ops)
        for _ in range(8):
            if self.attempt(self.rng.choices(funcs, weights=weights)[0]):
                break
        self.vars, self.seqs = saved[0], saved[1]
        new = self.current[saved[2] :]
        candidates = [s for s in new if s.kind != "block" and (s.args or s.kwargs)]
        if not candidates:
            return
        stmt = candidates[-1]
        mutated = self.mutate(stmt)
        if mutated is stmt:
            fn, args, kwargs = self.rng.choice(BAD_FACTORIES)
            mutated = Stmt("call", fn, args, dict(kwargs), self.new_name())
        pos = next(i for i, s in enumerate(self.current) if s is stmt)
        self.current[pos] = mutated
        for s in new:
            if s.target:
                self.vars.pop(s.target, None)
                self.seqs.pop(s.target, None)

    def mutate(self, stmt: Stmt) -> Stmt:
        """``stmt`` with one argument replaced by a bad value."""
        slots = [("arg", i) for i in range(len(stmt.args))] + [("kw", k) for k in stmt.kwargs]
        if stmt.kind in ("method", "attr", "setattr", "getitem", "setitem", "iop"):
            slots = slots[1:]  # keep the receiver: only tensors have the method or attribute
        if not slots:
            return stmt
        where, key = self.rng.choice(slots)
        r = self.rng.random()
        if r < 0.2 and self.vars:
            name, _ = self.rng.choice(list(self.vars.items()))
            bad = Ref(name)
        elif r < 0.35:
            bad = self.rng.choice([DType(d) for d in DTYPES])
        else:
            bad = self.rng.choice(BAD_VALUES)
        if where == "arg":
            args = list(stmt.args)
            args[key] = bad
            return replace(stmt, args=tuple(args), kwargs=dict(stmt.kwargs))
        kwargs = dict(stmt.kwargs)
        kwargs[key] = bad
        return replace(stmt, kwargs=kwargs)

    # ------------------------------------------------------------------ op table

    def _op_table(self) -> list:
        return [
            (6, self.factory),
            (3, self.requires_grad),
            (10, self.unary),
            (10, self.binary),
            (3, self.inplace_binary),
            (7, self.reduction),
            (3, self.softmax_like),
            (8, self.view_op),
            (6, self.getitem),
            (3, self.setitem),
            (3, self.join_split),
            (4, self.indexing_op),
            (3, self.clamp_where),
            (4, self.matmul_op),
            (4, self.functional),
            (3, self.loss),
            (3, self.convert),
            (3, self.detach_clone),
            (6, self.backward),
            (2, self.grad_assign),
            (2, self.grad_block),
            (4, self.protocol),
            (3, self.inspect),
            (2, self.random_inplace),
            (1, self.lerp_addc),
            (1, self.compare_all),
            (3, self.api_op),
        ]

    # ------------------------------------------------------------------ factories

    def factory(self) -> bool:
        """A tensor factory call (tensor, zeros, ones, full, arange, linspace, eye, rand...)."""
        rng = self.rng
        choice = rng.choices(
            [
                "tensor",
                "zeros",
                "ones",
                "full",
                "arange",
                "linspace",
                "eye",
                "rand",
                "randn",
                "randint",
                "randperm",
                "like",
            ],
            weights=[10, 2, 2, 2, 2, 1, 1, 3, 4, 2, 1, 2],
        )[0]
        if not self.has("module", choice if choice != "like" else "zeros_like"):
            return False
        rg_ok = self.grad_enabled
        kwargs: dict = {}
        if choice == "tensor":
            shape = self.rand_shape()
            kind = rng.choices(["float", "int", "bool"], weights=[7, 2, 1])[0]
            dtype = {"float": "float32", "int": "int64", "bool": "bool"}[kind]
            if rng.random() < 0.3:
                dtype = rng.choice(DTYPES)
                kwargs["dtype"] = DType(dtype)
            if dtype in FLOAT_DTYPES and rng.random() < 0.5:
                kwargs["requires_grad"] = True
            self.call(
                "tensor",
                (self.data(shape, kind),),
                kwargs,
                Meta(shape, dtype, bool(kwargs.get("requires_grad"))),
            )
            return True
        if choice in ("zeros", "ones", "rand", "randn"):
            shape = self.rand_shape()
            dtype = "float32"
            if rng.random() < 0.3:
                dtype = rng.choice(FLOAT_DTYPES if choice.startswith("rand") else DTYPES)
                kwargs["dtype"] = DType(dtype)
            if dtype in FLOAT_DTYPES and rng.random() < 0.4:
                kwargs["requires_grad"] = True
            args = self.size_args(shape)
            self.call(choice, args, kwargs, Meta(shape, dtype, bool(kwargs.get("requires_grad"))))
            return True
        if choice == "full":
            shape = self.rand_shape()
            value = rng.choice([self.element("float"), self.element("int"), self.element("bool")])
            dtype = {bool: "bool", int: "int64", float: "float32"}[type(value)]
            if rng.random() < 0.2:
                dtype = rng.choice(DTYPES)
                kwargs["dtype"] = DType(dtype)
            self.call("full", (shape, value), kwargs, Meta(shape, dtype))
            return True
        if choice == "arange":
            if rng.random() < 0.5:
                end = rng.choice([rng.randint(0, 6), rng.choice([2.5, 4.0, 0.5])])
                args: tuple = (end,)
            else:
                start = rng.choice([rng.randint(-3, 3), -1.5, 0.5])
                step = rng.choice([1, 2, 0.5, -1, -0.5])
                end = start + step * rng.randint(0, 5)
                args = (start, end, step)
            is_float = any(isinstance(a, float) for a in args)
            n = (
                max(0, math.ceil((args[-2] - args[0]) / args[-1]))
                if len(args) == 3
                else max(0, math.ceil(args[0]))
            )
            self.call("arange", args, {}, Meta((n,), "float32" if is_float else "int64"))
            return True
        if choice == "linspace":
            steps = rng.randint(0, 5)
            dtype = "float32"
            if rng.random() < 0.3:
                dtype = "float64"
                kwargs["dtype"] = DType(dtype)
            self.call(
                "linspace",
                (rng.choice([-1.0, 0, 2]), rng.choice([1, 3.5, -2.0]), steps),
                kwargs,
                Meta((steps,), dtype),
            )
            return True
        if choice == "eye":
            n = rng.randint(0, 4)
            args = (n,) if rng.random() < 0.6 else (n, rng.randint(0, 4))
            self.call("eye", args, {}, Meta((n, args[-1]), "float32"))
            return True
        if choice == "randint":
            shape = self.rand_shape()
            high = rng.randint(1, 6)
            args = (high, shape) if rng.random() < 0.5 else (-2, high, shape)
            self.call("randint", args, {}, Meta(shape, "int64"))
            return True
        if choice == "randperm":
            n = rng.randint(0, 6)
            self.call("randperm", (n,), {}, Meta((n,), "int64"))
            return True
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = rng.choice(["zeros_like", "ones_like", "full_like", "rand_like", "randn_like"])
        if not self.has("module", fn):
            return False
        args = (Ref(name), 1.5) if fn == "full_like" else (Ref(name),)
        if m.is_float and rg_ok and rng.random() < 0.3:
            kwargs["requires_grad"] = True
        self.call(fn, args, kwargs, Meta(m.shape, m.dtype, bool(kwargs.get("requires_grad"))))
        return True

    def requires_grad(self) -> bool:
        """``x.requires_grad_()`` (or ``requires_grad_(False)``) on a leaf, or ``x.requires_grad = ...``."""
        src = self.pick(lambda m: m.leaf)
        if src is None:
            return False
        name, m = src
        flag = self.rng.random() < 0.85
        if self.rng.random() < 0.2:
            self.emit(Stmt("setattr", "requires_grad", (Ref(name), flag)))
        else:
            self.method(
                name,
                "requires_grad_",
                (flag,) if not flag or self.rng.random() < 0.5 else (),
                meta=Meta(m.shape, m.dtype, flag and m.is_float, True),
            )
        if m.is_float:
            self.vars[name] = Meta(m.shape, m.dtype, flag, True)
        return True

    # ------------------------------------------------------------------ element-wise

    def unary(self) -> bool:
        """An element-wise unary op as a method, a ``torch.`` function, or in place."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        group = self.rng.choices(["float", "keep", "bool"], weights=[6, 4, 1])[0]
        fn = self.rng.choice({"float": UNARY_FLOAT, "keep": UNARY_KEEP, "bool": UNARY_BOOL}[group])
        dtype = "bool" if group == "bool" else m.dtype if group == "keep" or m.is_float else "float32"
        if fn in ("sign", "abs", "neg", "square") and m.dtype == "bool":
            dtype = "bool" if fn != "square" else "int64"
        meta = self.out_meta(m.shape, dtype, m)
        form = self.rng.random()
        if form < 0.15 and self.has("Tensor", fn + "_"):
            self.method(name, fn + "_", meta=meta)
        elif form < 0.5 and self.has("module", fn):
            self.call(fn, (Ref(name),), {}, meta)
        elif form < 0.55 and fn == "neg":
            self.emit(Stmt("unop", "-", (Ref(name),), {}, self.new_name()), meta)
        elif form < 0.6 and fn == "abs":
            self.emit(Stmt("protocol", "abs", (Ref(name),), {}, self.new_name()), meta)
        elif self.has("Tensor", fn):
            self.method(name, fn, meta=meta)
        else:
            return False
        return True

    def operand(self, m: Meta) -> tuple:
        """A second operand for a binary op with ``m``: a broadcastable tensor or a scalar."""
        if self.rng.random() < 0.3:
            value = self.scalar(m.dtype)
            return value, Meta((), "float32" if isinstance(value, float) else "int64"), True
        shape = self.broadcastable_shape(m.shape)
        match = self.pick(lambda o: o.shape == shape or broadcast(o.shape, m.shape) is not None)
        if match is None or self.rng.random() < 0.3:
            kind = {"bool": "bool", "int64": "int"}.get(m.dtype, "float")
            kwargs = (
                {"requires_grad": True}
                if kind == "float" and self.grad_enabled and self.rng.random() < 0.4
                else {}
            )
            st = self.call(
                "tensor",
                (self.data(shape, kind),),
                kwargs,
                Meta(shape, {"bool": "bool", "int": "int64", "float": "float32"}[kind], bool(kwargs)),
            )
            return Ref(st.target), self.vars[st.target], False
        return Ref(match[0]), match[1], False

    def binary(self) -> bool:
        """A binary arithmetic or comparison op: function, method, operator or reflected operator."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        other, om, is_scalar = self.operand(m)
        fn = self.rng.choice(BINARY_ARITH + BINARY_CMP + ("maximum", "minimum"))
        if fn in ("maximum", "minimum") and is_scalar:
            return False
        shape = broadcast(m.shape, om.shape) or m.shape
        if fn in BINARY_CMP:
            dtype = "bool"
        else:
            dtype = promote_scalar(m.dtype, other) if is_scalar else promote(m.dtype, om.dtype)
            if fn in ("div", "true_divide") and dtype in ("bool", "int64"):
                dtype = "float32"
        meta = self.out_meta(shape, dtype, m, om)
        form = self.rng.random()
        sym = BINOP_OF.get(fn) or (CMP_OPS[BINARY_CMP.index(fn)] if fn in BINARY_CMP else None)
        if sym and form < 0.45:
            args = (other, Ref(name)) if is_scalar and self.rng.random() < 0.5 else (Ref(name), other)
            self.emit(Stmt("binop", sym, args, {}, self.new_name()), meta)
        elif form < 0.7 and self.has("module", fn):
            kwargs = (
                {"alpha": self.rng.choice([2, 0.5, -1])}
                if fn in ("add", "sub") and self.rng.random() < 0.3
                else {}
            )
            self.call(fn, (Ref(name), other), kwargs, meta)
        elif self.has("Tensor", fn):
            self.method(name, fn, (other,), {}, meta)
        else:
            return False
        return True

    def inplace_binary(self) -> bool:
        """``x.add_(y)`` ... or ``x += y``: in place, on leaves too (an error when they require grad)."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        other, om, _ = self.operand(m)
        fn = self.rng.choice(["add", "sub", "mul", "div", "pow"])
        if self.rng.random() < 0.5 and fn in BINOP_OF:
            self.emit(Stmt("iop", BINOP_OF[fn], (Ref(name), other), {}, name))
        elif self.has("Tensor", fn + "_"):
            self.method(name, fn + "_", (other,), meta=self.out_meta(m.shape, m.dtype, m, om))
        else:
            return False
        if self.grad_enabled and om.rg and m.is_float:
            self.vars[name] = Meta(m.shape, m.dtype, True, False)
        return True

    def lerp_addc(self) -> bool:
        """``lerp``, ``addcmul``, ``addcdiv`` (method or in place)."""
        src = self.pick(lambda m: m.is_float)
        if src is None:
            return False
        name, m = src
        b, bm, _ = self.operand(m)
        if not isinstance(b, Ref):
            return False
        fn = self.rng.choice(["lerp", "addcmul", "addcdiv"])
        if self.rng.random() < 0.3:
            fn += "_"
        if not self.has("Tensor", fn):
            return False
        if fn.startswith("lerp"):
            self.method(
                name, fn, (b, self.rng.choice([0.5, 0.25, 2.0])), meta=self.out_meta(m.shape, m.dtype, m, bm)
            )
        else:
            c, _, _ = self.operand(m)
            kwargs = {"value": self.rng.choice([0.5, 2.0])} if self.rng.random() < 0.5 else {}
            self.method(name, fn, (b, c), kwargs, meta=self.out_meta(m.shape, m.dtype, m, bm))
        return True

    def api_op(self) -> bool:
        """Issue 12's tensor API: flip/roll/tril/triu/diagonal/trace, sort/topk/kthvalue/median/mode,
        cumprod/cummax/cummin, amax/amin, fmod/remainder/nan_to_num."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        rng = self.rng
        fn = rng.choice(
            ["flip", "roll", "tril", "triu", "diagonal", "trace", "sort", "topk", "kthvalue", "median", "mode",
             "cumprod", "cummax", "cummin", "amax", "amin", "fmod", "remainder", "nan_to_num", "argsort",
             "aminmax", "count_nonzero", "diag_embed", "tile", "new_zeros", "tril_", "fmod_", "nan_to_num_"]
        )
        if not self.has("Tensor", fn):
            return False
        nd, shape, dtype = m.ndim, m.shape, m.dtype
        d = self.dim(nd)
        w = self.norm_dim(d, nd) if nd else 0
        size = shape[w] if nd else 1
        reduced = tuple(s for i, s in enumerate(shape) if i != w)
        kept = tuple(1 if i == w else s for i, s in enumerate(shape))
        args: tuple = ()
        kwargs: dict = {}
        pair = False
        out = shape
        if fn == "flip":
            args = (d,)
        elif fn == "roll":
            args = (rng.randint(-3, 3), d)
        elif fn in ("tril", "triu"):
            args = (rng.randint(-1, 1),) if rng.random() < 0.5 else ()
        elif fn == "diagonal":
            if nd < 2:
                return False
            off = rng.randint(-1, 1)
            args = (off,)
            n = min(shape[0], shape[1] - off) if off >= 0 else min(shape[0] + off, shape[1])
            out = tuple(shape[2:]) + (max(n, 0),)
        elif fn == "trace":
            out = ()
            dtype = dtype if m.is_float else "int64"
        elif fn == "sort":
            args, pair = (d,), True
            if rng.random() < 0.4:
                kwargs["descending"] = True
        elif fn == "topk":
            k = rng.randint(0, size)
            args, pair = (k, d), True
            out = tuple(k if i == w else s for i, s in enumerate(shape))
        elif fn in ("kthvalue", "median", "mode", "amax", "amin"):
            if fn == "median" and rng.random() < 0.3:
                out = ()
            else:
                keep = rng.random() < 0.3
                args = (rng.randint(1, max(size, 1)), d) if fn == "kthvalue" else (d,)
                if keep:
                    kwargs["keepdim"] = True
                out = (kept if keep else reduced) if nd else ()
                pair = fn not in ("amax", "amin")
        elif fn == "cumprod":
            args = (d,)
            dtype = dtype if m.is_float else "int64"
        elif fn in ("cummax", "cummin"):
            args, pair = (d,), True
        elif fn in ("fmod", "remainder", "fmod_"):
            v = self.scalar(dtype)
            args = (v,)
            if isinstance(v, float) and not m.is_float and fn != "fmod_":
                dtype = "float32"
        elif fn == "tril_":
            args = (rng.randint(-1, 1),)
        elif fn == "argsort":
            args, dtype = (d,), "int64"
        elif fn == "aminmax":
            kwargs = {"dim": d} if rng.random() < 0.5 and nd else {}
            out = reduced if kwargs else ()
            meta2 = self.out_meta(out, dtype, m)
            self.method(name, fn, args, kwargs, [meta2, meta2])
            return True
        elif fn == "count_nonzero":
            args, out, dtype = ((d,), reduced, "int64") if nd and rng.random() < 0.5 else ((), (), "int64")
        elif fn == "diag_embed":
            n = (shape[-1] if nd else 1)
            out = tuple(shape[:-1]) + (n, n)
        elif fn == "tile":
            reps = tuple(rng.randint(0, 2) for _ in range(rng.randint(1, 3)))
            args = reps
            full = (1,) * (len(reps) - nd) + tuple(shape) if len(reps) >= nd else tuple(shape)
            r = (1,) * (len(full) - len(reps)) + reps
            out = tuple(a * b for a, b in zip(full, r))
        elif fn == "new_zeros":
            out = self.rand_shape()
            args = (out,)
            meta = Meta(out, dtype)
            self.method(name, fn, args, kwargs, meta)
            return True
        meta = self.out_meta(out, dtype, m)
        if pair:
            meta = [meta, Meta(out, "int64")]
        self.method(name, fn, args, kwargs, meta)
        return True

    def clamp_where(self) -> bool:
        """``clamp``/``clip``/``clamp_min``/``clamp_max``, ``where``, ``masked_fill``."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        r = self.rng.random()
        if r < 0.45:
            fn = self.rng.choice(["clamp", "clip", "clamp_min", "clamp_max", "clamp_"])
            if not self.has("Tensor", fn):
                return False
            lo, hi = self.rng.choice([(-0.5, 0.5), (0, None), (None, 1.0), (1, 0), (-1, 2)])
            if fn == "clamp_min":
                args, kwargs = (lo if lo is not None else 0,), {}
            elif fn == "clamp_max":
                args, kwargs = (hi if hi is not None else 0,), {}
            else:
                args, kwargs = (), {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
            if fn in ("clamp", "clip") and self.rng.random() < 0.4:
                self.call(fn, (Ref(name), *args), kwargs, self.out_meta(m.shape, m.dtype, m))
            else:
                self.method(name, fn, args, kwargs, self.out_meta(m.shape, m.dtype, m))
            return True
        mask = self.pick(lambda o: o.dtype == "bool" and broadcast(o.shape, m.shape) is not None)
        if mask is None:
            st = self.emit(Stmt("binop", ">", (Ref(name), 0), {}, self.new_name()), Meta(m.shape, "bool"))
            mask = (st.target, self.vars[st.target])
        if r < 0.75 and self.has("module", "where"):
            other, om, _ = self.operand(m)
            shape = broadcast(broadcast(m.shape, om.shape) or m.shape, mask[1].shape) or m.shape
            self.call("where", (Ref(mask[0]), Ref(name), other), {}, self.out_meta(shape, m.dtype, m, om))
        else:
            fn = "masked_fill_" if self.rng.random() < 0.25 else "masked_fill"
            self.method(
                name, fn, (Ref(mask[0]), self.scalar(m.dtype)), meta=self.out_meta(m.shape, m.dtype, m)
            )
        return True

    # ------------------------------------------------------------------ reductions

    def reduction(self) -> bool:
        """sum/mean/max/min/prod/var/std/norm/argmax/argmin/logsumexp/all/any/cumsum with dim/keepdim."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = self.rng.choice(
            [
                "sum",
                "mean",
                "max",
                "min",
                "prod",
                "var",
                "std",
                "norm",
                "argmax",
                "argmin",
                "logsumexp",
                "all",
                "any",
                "cumsum",
                "sum",
                "mean",
            ]
        )
        if not self.has("Tensor", fn):
            return False
        args: tuple = ()
        kwargs: dict = {}
        use_dim = fn in ("cumsum", "logsumexp") or self.rng.random() < 0.6
        dims: tuple = ()
        keep = False
        if use_dim:
            d = self.dim(m.ndim)
            if fn in ("sum", "mean", "logsumexp", "norm") and m.ndim >= 2 and self.rng.random() < 0.3:
                d2 = self.dim(m.ndim)
                if self.norm_dim(d2, m.ndim) != self.norm_dim(d, m.ndim):
                    d = (d, d2)
            dims = d if isinstance(d, tuple) else (d,)
            if fn == "norm":
                args = (self.rng.choice([2, 1, "fro", float("inf")]), d)
            elif fn in ("var", "std") and self.rng.random() < 0.3:
                kwargs["correction"] = self.rng.choice([0, 1, 2])
                args = (d,)
            else:
                args = (d,)
            if fn != "cumsum" and self.rng.random() < 0.4:
                keep = True
                kwargs["keepdim"] = True
        elif fn in ("var", "std") and self.rng.random() < 0.3:
            args = (self.rng.random() < 0.5,)
        norm = {self.norm_dim(d, m.ndim) for d in dims}
        if fn == "cumsum" or not use_dim:
            shape = m.shape if fn == "cumsum" else ()
        elif keep:
            shape = tuple(1 if i in norm else s for i, s in enumerate(m.shape))
        else:
            shape = tuple(s for i, s in enumerate(m.shape) if i not in norm)
        dtype = m.dtype
        if fn in ("argmax", "argmin"):
            dtype = "int64"
        elif fn in ("all", "any"):
            dtype = "bool"
        elif fn in ("sum", "prod", "cumsum") and m.dtype == "bool":
            dtype = "int64"
        elif fn in ("mean", "var", "std", "norm", "logsumexp") and not m.is_float:
            dtype = "float32"
        meta = self.out_meta(shape, dtype, m)
        if fn in ("max", "min") and use_dim:
            meta = [meta, Meta(shape, "int64")]
        if self.rng.random() < 0.35 and self.has("module", fn):
            self.call(fn, (Ref(name), *args), kwargs, meta)
        else:
            self.method(name, fn, args, kwargs, meta)
        return True

    def softmax_like(self) -> bool:
        """``softmax``/``log_softmax`` (method, ``torch.``, or ``F.``, optional dtype)."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = self.rng.choice(["softmax", "log_softmax"])
        d = self.dim(m.ndim)
        kwargs = {"dtype": DType("float64")} if self.rng.random() < 0.15 else {}
        dtype = "float64" if kwargs else m.dtype
        meta = self.out_meta(m.shape, dtype, m)
        r = self.rng.random()
        if r < 0.3 and self.has("nn.functional", fn):
            self.call("nn.functional." + fn, (Ref(name), d), kwargs, meta)
        elif r < 0.5 and self.has("module", fn):
            self.call(fn, (Ref(name), d), kwargs, meta)
        else:
            self.method(name, fn, (d,), kwargs, meta)
        return True

    # ------------------------------------------------------------------ views and shapes

    def view_op(self) -> bool:
        """view/reshape/transpose/permute/squeeze/unsqueeze/flatten/narrow/expand/t/repeat/*_as."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        rng = self.rng
        fn = rng.choice(
            [
                "view",
                "reshape",
                "transpose",
                "permute",
                "squeeze",
                "unsqueeze",
                "flatten",
                "narrow",
                "expand",
                "t",
                "repeat",
                "view_as",
                "expand_as",
                "reshape_as",
                "contiguous",
                "T",
                "mT",
            ]
        )
        shape = m.shape
        args: tuple = ()
        if fn in ("view", "reshape"):
            new = self.factor_shape(m.numel, m.ndim)
            if new and rng.random() < 0.3:
                new = tuple(-1 if i == rng.randrange(len(new)) else s for i, s in enumerate(new))
            args = (tuple(new),) if rng.random() < 0.3 else tuple(new)
            shape = tuple(s if s != -1 else 0 for s in new)
            if -1 in new:
                known = math.prod(s for s in new if s != -1)
                shape = tuple((m.numel // known if known else 0) if s == -1 else s for s in new)
        elif fn == "transpose":
            a, b = self.dim(m.ndim), self.dim(m.ndim)
            args = (a, b)
            s = list(shape) if shape else []
            if s:
                ia, ib = self.norm_dim(a, m.ndim), self.norm_dim(b, m.ndim)
                s[ia], s[ib] = s[ib], s[ia]
            shape = tuple(s)
        elif fn == "permute":
            order = list(range(m.ndim))
            rng.shuffle(order)
            args = (tuple(order),) if rng.random() < 0.4 else tuple(order)
            shape = tuple(m.shape[i] for i in order)
        elif fn == "squeeze":
            if rng.random() < 0.5:
                d = self.dim(m.ndim)
                args = (d,)
                nd = self.norm_dim(d, m.ndim)
                shape = tuple(s for i, s in enumerate(shape) if not (i == nd and s == 1))
            else:
                shape = tuple(s for s in shape if s != 1)
        elif fn == "unsqueeze":
            d = rng.randint(-m.ndim - 1, m.ndim)
            args = (d,)
            pos = d + m.ndim + 1 if d < 0 else d
            shape = shape[:pos] + (1,) + shape[pos:]
        elif fn == "flatten":
            if m.ndim >= 2 and rng.random() < 0.5:
                a = rng.randrange(m.ndim)
                b = rng.randrange(a, m.ndim)
                args = (a, b)
                shape = shape[:a] + (math.prod(shape[a : b + 1]),) + shape[b + 1 :]
            else:
                shape = (m.numel,)
        elif fn == "narrow":
            if not m.ndim:
                args = (0, 0, 1)
            else:
                d = self.dim(m.ndim)
                size = shape[self.norm_dim(d, m.ndim)]
                start = rng.randint(0, size)
                length = rng.randint(0, size - start)
                args = (d, start, length)
                shape = tuple(length if i == self.norm_dim(d, m.ndim) else s for i, s in enumerate(shape))
        elif fn == "expand":
            new = [rng.randint(2, 3) if s == 1 else s for s in shape]
            if rng.random() < 0.3:
                new = [2, *new]
            args = tuple(
                -1 if rng.random() < 0.2 and i >= len(new) - m.ndim else s for i, s in enumerate(new)
            )
            shape = tuple(new)
        elif fn == "t":
            if m.ndim > 2:
                return False
            shape = tuple(reversed(shape))
        elif fn == "repeat":
            reps = [rng.randint(1, 2) for _ in range(max(m.ndim, 1) + rng.randint(0, 1))]
            args = tuple(reps)
            padded = (1,) * (len(reps) - m.ndim) + shape
            shape = tuple(a * b for a, b in zip(padded, reps))
        elif fn in ("view_as", "expand_as", "reshape_as"):
            target = self.pick(
                lambda o: o.numel == m.numel if fn != "expand_as" else broadcast(o.shape, m.shape) == o.shape
            )
            if target is None:
                return False
            args = (Ref(target[0]),)
            shape = target[1].shape
        elif fn in ("T", "mT"):
            if fn == "mT" and m.ndim < 2:
                return False
            if fn == "T" and m.ndim != 2:
                return False
            shape = tuple(reversed(shape)) if fn == "T" else shape[:-2] + (shape[-1], shape[-2])
            self.emit(Stmt("attr", fn, (Ref(name),), {}, self.new_name()), self.out_meta(shape, m.dtype, m))
            return True
        if not self.has("Tensor", fn):
            return False
        meta = self.out_meta(shape, m.dtype, m)
        if (
            fn in ("reshape", "transpose", "permute", "squeeze", "unsqueeze", "flatten", "narrow", "t")
            and rng.random() < 0.25
            and self.has("module", fn)
        ):
            flat = (
                args[0]
                if len(args) == 1 and isinstance(args[0], tuple) and fn in ("reshape", "permute")
                else None
            )
            call_args = (Ref(name), flat) if flat is not None else (Ref(name), *args)
            if fn in ("reshape", "permute") and flat is None:
                call_args = (Ref(name), tuple(args))
            self.call(fn, call_args, {}, meta)
        else:
            self.method(name, fn, args, {}, meta)
        return True

    def factor_shape(self, numel: int, ndim: int) -> tuple:
        """A random shape with ``numel`` elements."""
        if numel == 0:
            return self.rng.choice([(0,), (0, 2), (2, 0)])
        dims = []
        rest = numel
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
                dims.append(p)
        if rest > 1:
            dims.append(rest)
        self.rng.shuffle(dims)
        out: list = []
        for f in dims:
            if out and self.rng.random() < 0.5:
                out[-1] *= f
            else:
                out.append(f)
        if self.rng.random() < 0.3:
            out.insert(self.rng.randint(0, len(out)), 1)
        return tuple(out)

    def index_item(self, size: int) -> object:
        """One item of an index key for a dim of ``size``."""
        rng = self.rng
        r = rng.random()
        if r < 0.35 and size > 0:
            i = rng.randrange(size)
            return i - size if rng.random() < 0.3 else i
        if r < 0.75:
            start = rng.choice([None, 0, 1, -1, -2])
            stop = rng.choice([None, 2, -1, 3, 10])
            step = rng.choice([None, None, 1, 2])
            return slice(start, stop, step)
        if r < 0.85:
            return None
        if size > 0:
            return [rng.randrange(size) for _ in range(rng.randint(1, 3))]
        return slice(None)

    def key_for(self, m: Meta) -> tuple:
        """A random index key and the indexed result's modelled shape (approximate)."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.15:
            mask = self.pick(lambda o: o.dtype == "bool" and o.shape == m.shape and o.ndim > 0)
            if mask is not None:
                return Ref(mask[0]), (max(1, m.numel // 2),)
        if kind < 0.3 and m.ndim > 0:
            idx = self.pick(lambda o: o.dtype == "int64" and o.ndim <= 2)
            if idx is not None:
                return Ref(idx[0]), idx[1].shape + m.shape[1:]
        items: list = []
        shape: list = []
        use_ellipsis = rng.random() < 0.2
        for d in range(m.ndim if not use_ellipsis else rng.randint(0, m.ndim)):
            item = self.index_item(m.shape[d])
            items.append(item)
            if isinstance(item, slice):
                shape.append(len(range(*item.indices(m.shape[d]))))
            elif item is None:
                shape.append(1)
                items.append(slice(None))
                shape.append(m.shape[d])
            elif isinstance(item, list):
                shape.append(len(item))
        if use_ellipsis:
            items.append(Ellipsis)
            shape += list(m.shape[len([i for i in items if i is not None and i is not Ellipsis]) :])
        if not items:
            items = [None] if rng.random() < 0.5 else [Ellipsis]
            shape = [1, *m.shape] if items[0] is None else list(m.shape)
        key = tuple(items) if len(items) > 1 or rng.random() < 0.2 else items[0]
        return key, tuple(max(s, 0) for s in shape)

    def getitem(self) -> bool:
        """``x[key]`` with ints, slices, None, Ellipsis, bool masks, index tensors, lists; tuples too."""
        if self.seqs and self.rng.random() < 0.3:
            name, metas = self.rng.choice(list(self.seqs.items()))
            i = self.rng.randrange(len(metas)) if metas else 0
            self.emit(Stmt("getitem", "", (Ref(name), i), {}, self.new_name()), metas[i] if metas else None)
            return True
        src = self.pick()
        if src is None:
            return False
        name, m = src
        key, shape = self.key_for(m)
        self.emit(
            Stmt("getitem", "", (Ref(name), key), {}, self.new_name()), self.out_meta(shape, m.dtype, m)
        )
        return True

    def setitem(self) -> bool:
        """``x[key] = value`` with a scalar or a tensor value."""
        src = self.pick(lambda o: o.ndim > 0)
        if src is None:
            return False
        name, m = src
        key, shape = self.key_for(m)
        if self.rng.random() < 0.5:
            value: object = self.scalar(m.dtype)
            vm = None
        else:
            vshape = self.broadcastable_shape(shape) if self.rng.random() < 0.8 else ()
            kind = {"bool": "bool", "int64": "int"}.get(m.dtype, "float")
            kwargs = (
                {"requires_grad": True}
                if kind == "float" and self.grad_enabled and self.rng.random() < 0.5
                else {}
            )
            st = self.call(
                "tensor",
                (self.data(vshape, kind),),
                kwargs,
                Meta(vshape, m.dtype if kind != "float" else "float32", bool(kwargs)),
            )
            value = Ref(st.target)
            vm = self.vars[st.target]
        self.emit(Stmt("setitem", "", (Ref(name), key, value)))
        if vm is not None and vm.rg and self.grad_enabled and m.is_float:
            self.vars[name] = Meta(m.shape, m.dtype, True, False)
        return True

    def join_split(self) -> bool:
        """cat/stack (functions) and split/chunk/unbind (tuples of tensors)."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        rng = self.rng
        fn = rng.choice(["cat", "stack", "split", "chunk", "unbind", "concat"])
        if fn in ("cat", "stack", "concat"):
            if not self.has("module", fn):
                return False
            same = [n for n, o in self.vars.items() if o.shape == m.shape and n != name]
            parts = [name] + rng.sample(same, min(len(same), rng.randint(0, 2)))
            if len(parts) == 1 and rng.random() < 0.5:
                parts.append(name)
            d = self.dim(m.ndim + (1 if fn == "stack" else 0))
            metas = [self.vars[p] for p in parts]
            dtype = metas[0].dtype
            for o in metas[1:]:
                dtype = promote(dtype, o.dtype)
            if fn == "stack":
                pos = self.norm_dim(d, m.ndim + 1)
                shape = m.shape[:pos] + (len(parts),) + m.shape[pos:]
            elif m.ndim:
                nd = self.norm_dim(d, m.ndim)
                shape = tuple(s * len(parts) if i == nd else s for i, s in enumerate(m.shape))
            else:
                shape = m.shape
            seq = [Ref(p) for p in parts]
            args = (seq if rng.random() < 0.7 else tuple(seq), d) if rng.random() < 0.7 else (seq,)
            if len(args) == 1:
                shape = m.shape[:0] + (
                    (len(parts),) + m.shape
                    if fn == "stack"
                    else ((m.shape[0] * len(parts),) + m.shape[1:] if m.ndim else ())
                )
            self.call(fn, args, {}, self.out_meta(shape, dtype, *metas))
            return True
        if not self.has("Tensor", fn) or m.ndim == 0:
            return False
        d = self.dim(m.ndim)
        nd = self.norm_dim(d, m.ndim)
        size = m.shape[nd] if m.ndim else 0
        if fn == "split":
            if rng.random() < 0.5 and size > 0:
                sizes = []
                left = size
                while left > 0:
                    s = rng.randint(1, left)
                    sizes.append(s)
                    left -= s
                args = (sizes, d)
                lens = sizes
            else:
                k = rng.randint(1, 3)
                args = (k, d)
                lens = [min(k, size - i) for i in range(0, size, k)] or [0]
        elif fn == "chunk":
            k = rng.randint(1, 4)
            args = (k, d)
            step = -(-size // k) if size else 0
            lens = [min(step, size - i) for i in range(0, size, step)] if step else [0]
        else:
            args = (d,)
            lens = [None] * size
        metas = []
        for ln in lens:
            shape = (
                tuple(s for i, s in enumerate(m.shape) if i != nd)
                if ln is None
                else tuple(ln if i == nd else s for i, s in enumerate(m.shape))
            )
            metas.append(self.out_meta(shape, m.dtype, m))
        if rng.random() < 0.3 and self.has("module", fn):
            self.call(fn, (Ref(name), *args), {}, metas)
        else:
            self.method(name, fn, args, {}, metas)
        return True

    def index_tensor(self, size: int, shape: tuple) -> str:
        """Emits an int64 index tensor of ``shape`` with values in ``[0, size)`` and returns its name."""
        data = self.data(shape, "int")
        data = _map_nested(data, lambda v: v % size if size else 0)
        return self.call("tensor", (data,), {}, Meta(shape, "int64")).target

    def indexing_op(self) -> bool:
        """gather/scatter/scatter_add/index_select/index_put/nonzero."""
        src = self.pick(lambda o: o.ndim > 0)
        if src is None:
            return False
        name, m = src
        rng = self.rng
        fn = rng.choice(
            ["gather", "scatter", "scatter_add", "index_select", "index_put", "nonzero", "scatter_"]
        )
        if not self.has("Tensor", fn):
            return False
        d = self.dim(m.ndim)
        nd = self.norm_dim(d, m.ndim)
        if fn == "nonzero":
            self.method(name, fn, meta=Meta((0, m.ndim), "int64"))
            return True
        if fn == "index_select":
            k = rng.randint(0, 3)
            idx = self.index_tensor(m.shape[nd], (k,))
            shape = tuple(k if i == nd else s for i, s in enumerate(m.shape))
            if rng.random() < 0.3 and self.has("module", fn):
                self.call(fn, (Ref(name), d, Ref(idx)), {}, self.out_meta(shape, m.dtype, m))
            else:
                self.method(name, fn, (d, Ref(idx)), {}, self.out_meta(shape, m.dtype, m))
            return True
        if fn == "index_put":
            k = rng.randint(1, 3)
            idx = self.index_tensor(m.shape[0], (k,))
            vshape = (k,) + m.shape[1:] if rng.random() < 0.6 else ()
            val = self.call(
                "tensor",
                (self.data(vshape, "float" if m.is_float else "int"),),
                {},
                Meta(vshape, m.dtype if not m.is_float else "float32"),
            ).target
            kwargs = {"accumulate": True} if rng.random() < 0.5 else {}
            self.method(name, fn, ((Ref(idx),), Ref(val)), kwargs, self.out_meta(m.shape, m.dtype, m))
            return True
        ishape = tuple(rng.randint(1, s) if s > 0 else 0 for s in m.shape)
        idx = self.index_tensor(m.shape[nd] if fn == "gather" else ishape[nd] and m.shape[nd], ishape)
        if fn == "gather":
            if rng.random() < 0.3 and self.has("module", fn):
                self.call(fn, (Ref(name), d, Ref(idx)), {}, self.out_meta(ishape, m.dtype, m))
            else:
                self.method(name, fn, (d, Ref(idx)), {}, self.out_meta(ishape, m.dtype, m))
            return True
        if fn.startswith("scatter") and fn != "scatter_add" and rng.random() < 0.4:
            self.method(
                name, fn, (d, Ref(idx)), {"value": self.scalar(m.dtype)}, self.out_meta(m.shape, m.dtype, m)
            )
            return True
        kind = {"bool": "bool", "int64": "int"}.get(m.dtype, "float")
        kwargs = (
            {"requires_grad": True} if kind == "float" and self.grad_enabled and rng.random() < 0.5 else {}
        )
        src_t = self.call(
            "tensor", (self.data(ishape, kind),), kwargs, Meta(ishape, m.dtype, bool(kwargs))
        ).target
        meta = self.out_meta(m.shape, m.dtype, m, self.vars[src_t])
        self.method(name, fn, (d, Ref(idx), Ref(src_t)), {}, meta)
        if fn.endswith("_"):
            self.vars[name] = meta if not meta.rg else Meta(m.shape, m.dtype, True, False)
        return True

    # ------------------------------------------------------------------ linear algebra

    def matmul_op(self) -> bool:
        """matmul/@/mm/mv/bmm/dot/addmm/linear with matching (or nearly matching) shapes."""
        rng = self.rng
        fn = rng.choice(["matmul", "@", "mm", "mv", "bmm", "dot", "addmm", "linear"])
        dtype = rng.choice(["float32", "float32", "float64"])
        n, k, p, b = (rng.randint(1, 4) for _ in range(4))
        shapes = {
            "matmul": rng.choice(
                [
                    ((k,), (k,)),
                    ((n, k), (k,)),
                    ((k,), (k, p)),
                    ((n, k), (k, p)),
                    ((b, n, k), (k, p)),
                    ((b, n, k), (b, k, p)),
                    ((n, k), (b, k, p)),
                ]
            ),
            "mm": ((n, k), (k, p)),
            "mv": ((n, k), (k,)),
            "bmm": ((b, n, k), (b, k, p)),
            "dot": ((k,), (k,)),
            "addmm": ((n, k), (k, p)),
            "linear": ((n, k), (p, k)),
        }
        sa, sb = shapes["matmul" if fn == "@" else fn]
        if fn == "linear" and rng.random() < 0.3:
            sa = (b,) + sa
        a = self.pick(lambda o: o.shape == sa and o.dtype == dtype) or self.fresh(sa, dtype)
        c = self.pick(lambda o: o.shape == sb and o.dtype == dtype) or self.fresh(sb, dtype)
        am, cm = a[1], c[1]
        if fn == "linear":
            out_shape = sa[:-1] + (sb[0],)
        elif len(sa) == 1 and len(sb) == 1:
            out_shape = ()
        elif len(sb) == 1:
            out_shape = sa[:-1]
        elif len(sa) == 1:
            out_shape = sb[:-2] + sb[-1:]
        else:
            batch = broadcast(sa[:-2], sb[:-2]) or ()
            out_shape = batch + (sa[-2], sb[-1])
        meta = self.out_meta(out_shape, dtype, am, cm)
        if fn == "@":
            self.emit(Stmt("binop", "@", (Ref(a[0]), Ref(c[0])), {}, self.new_name()), meta)
        elif fn == "addmm":
            bias = self.fresh(self.broadcastable_shape((n, p)), dtype)
            if not self.has("module", "addmm"):
                return False
            self.call(
                "addmm",
                (Ref(bias[0]), Ref(a[0]), Ref(c[0])),
                {},
                self.out_meta(out_shape, dtype, am, cm, bias[1]),
            )
        elif fn == "linear":
            if not self.has("nn.functional", "linear"):
                return False
            args: tuple = (Ref(a[0]), Ref(c[0]))
            if rng.random() < 0.6:
                args += (Ref(self.fresh((sb[0],), dtype)[0]),)
            self.call("nn.functional.linear", args, {}, meta)
        elif rng.random() < 0.4 and self.has("module", fn):
            self.call(fn, (Ref(a[0]), Ref(c[0])), {}, meta)
        else:
            self.method(a[0], fn, (Ref(c[0]),), {}, meta)
        return True

    def fresh(self, shape: tuple, dtype: str, rg: bool | None = None) -> tuple:
        """Emits ``randn``/``rand`` (or ``tensor``) of ``shape`` and returns ``(name, meta)``."""
        if rg is None:
            rg = self.grad_enabled and dtype in FLOAT_DTYPES and self.rng.random() < 0.6
        kwargs: dict = {"requires_grad": True} if rg else {}
        if dtype in FLOAT_DTYPES:
            if dtype != "float32":
                kwargs["dtype"] = DType(dtype)
            st = self.call(
                self.rng.choice(["randn", "rand"]), self.size_args(shape), kwargs, Meta(shape, dtype, rg)
            )
        else:
            kind = "bool" if dtype == "bool" else "int"
            st = self.call("tensor", (self.data(shape, kind),), {}, Meta(shape, dtype))
        return st.target, self.vars[st.target]

    # ------------------------------------------------------------------ nn.functional

    def functional(self) -> bool:
        """An ``nn.functional`` activation, ``dropout`` or ``one_hot``."""
        rng = self.rng
        fn = rng.choice(ACTIVATIONS + ("dropout", "one_hot"))
        if not self.has("nn.functional", fn):
            return False
        if fn == "one_hot":
            n = rng.randint(1, 4)
            idx = self.index_tensor(n, self.rand_shape(2, allow_zero=False))
            m = self.vars[idx]
            args: tuple = (Ref(idx),) if rng.random() < 0.5 else (Ref(idx), n + rng.randint(0, 1))
            classes = args[1] if len(args) > 1 else None
            self.call("nn.functional.one_hot", args, {}, Meta(m.shape + ((classes or n),), "int64"))
            return True
        src = self.pick()
        if src is None:
            return False
        name, m = src
        kwargs: dict = {}
        if fn == "gelu" and rng.random() < 0.5:
            kwargs["approximate"] = "tanh"
        elif fn == "leaky_relu" and rng.random() < 0.5:
            kwargs["negative_slope"] = rng.choice([0.2, 0.01, -0.5])
        elif fn == "softplus" and rng.random() < 0.5:
            kwargs["beta"] = rng.choice([2.0, 0.5])
            kwargs["threshold"] = rng.choice([1.0, 20.0])
        elif fn == "dropout":
            kwargs["p"] = rng.choice([0.0, 0.5, 0.25, 1.0])
            kwargs["training"] = rng.random() < 0.8
        self.call("nn.functional." + fn, (Ref(name),), kwargs, self.out_meta(m.shape, m.dtype, m))
        return True

    def loss(self) -> bool:
        """mse/l1/cross_entropy/nll/binary_cross_entropy(_with_logits) with valid or near-valid targets."""
        rng = self.rng
        fn = rng.choice(
            [
                "mse_loss",
                "l1_loss",
                "cross_entropy",
                "nll_loss",
                "binary_cross_entropy",
                "binary_cross_entropy_with_logits",
                "cross_entropy",
            ]
        )
        if not self.has("nn.functional", fn):
            return False
        dtype = rng.choice(["float32", "float64"])
        kwargs: dict = {}
        reduction = rng.choice(["mean", "mean", "sum", "none"])
        if reduction != "mean":
            kwargs["reduction"] = reduction
        if fn in ("mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
            src = self.pick(lambda o: o.dtype == dtype) or self.fresh(self.rand_shape(), dtype)
            name, m = src
            if fn == "binary_cross_entropy":
                st = self.call("sigmoid", (Ref(name),), {}, self.out_meta(m.shape, dtype, m))
                name = st.target
            target = self.fresh(m.shape, dtype, rg=False)[0]
            if fn == "binary_cross_entropy":
                target = self.call(
                    "rand",
                    self.size_args(m.shape),
                    {"dtype": DType(dtype)} if dtype != "float32" else {},
                    Meta(m.shape, dtype),
                ).target
            if fn.startswith("binary") and rng.random() < 0.3:
                kwargs["weight"] = Ref(self.fresh(m.shape[-1:], dtype, rg=False)[0])
            if fn.endswith("logits") and rng.random() < 0.3:
                kwargs["pos_weight"] = Ref(self.fresh(m.shape[-1:], dtype, rg=False)[0])
            shape = m.shape if reduction == "none" else ()
            self.call("nn.functional." + fn, (Ref(name), Ref(target)), kwargs, self.out_meta(shape, dtype, m))
            return True
        n, c = rng.randint(1, 4), rng.randint(1, 4)
        extra = (rng.randint(1, 3),) if rng.random() < 0.2 else ()
        in_shape = (n, c) + extra if rng.random() < 0.85 else (c,)
        src = self.pick(lambda o: o.shape == in_shape and o.dtype == dtype) or self.fresh(in_shape, dtype)
        name, m = src
        if fn == "nll_loss":
            name = self.call(
                "log_softmax",
                (Ref(name), 1 if len(in_shape) > 1 else 0),
                {},
                self.out_meta(in_shape, dtype, m),
            ).target
        tshape = (in_shape[0],) + extra if len(in_shape) > 1 else ()
        if fn == "cross_entropy" and rng.random() < 0.25:
            target = self.call(
                "softmax",
                (Ref(self.fresh(in_shape, dtype, rg=False)[0]), 1 if len(in_shape) > 1 else 0),
                {},
                Meta(in_shape, dtype),
            ).target
        else:
            target = self.index_tensor(c, tshape)
            if rng.random() < 0.2:
                kwargs["ignore_index"] = rng.randrange(c)
        if rng.random() < 0.25:
            kwargs["weight"] = Ref(
                self.call(
                    "rand", (c,), {"dtype": DType(dtype)} if dtype != "float32" else {}, Meta((c,), dtype)
                ).target
            )
        if fn == "cross_entropy" and rng.random() < 0.25:
            kwargs["label_smoothing"] = rng.choice([0.1, 0.5])
        shape = tshape if reduction == "none" else ()
        self.call("nn.functional." + fn, (Ref(name), Ref(target)), kwargs, self.out_meta(shape, dtype, m))
        return True

    # ------------------------------------------------------------------ dtype, detach, autograd

    def convert(self) -> bool:
        """``.to(dtype)``, ``.to(other)``, ``.float()``/``.double()``/``.long()``/``.bool()``, ``type_as``."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            dtype = rng.choice(DTYPES)
            kwargs = {"copy": True} if rng.random() < 0.1 else {}
            if rng.random() < 0.2:
                kwargs["dtype"] = DType(dtype)
                self.method(name, "to", (), kwargs, self.out_meta(m.shape, dtype, m))
            else:
                self.method(name, "to", (DType(dtype),), kwargs, self.out_meta(m.shape, dtype, m))
            return True
        if r < 0.55:
            other = self.pick()
            fn = rng.choice(["to", "type_as"])
            if other is None or not self.has("Tensor", fn):
                return False
            self.method(name, fn, (Ref(other[0]),), {}, self.out_meta(m.shape, other[1].dtype, m))
            return True
        fn, dtype = rng.choice(
            [("float", "float32"), ("double", "float64"), ("long", "int64"), ("bool", "bool")]
        )
        self.method(name, fn, (), {}, self.out_meta(m.shape, dtype, m))
        return True

    def detach_clone(self) -> bool:
        """detach/detach_/clone/contiguous/data."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = self.rng.choice(["detach", "clone", "contiguous", "detach_", "data", "clone"])
        if fn == "data":
            self.emit(Stmt("attr", "data", (Ref(name),), {}, self.new_name()), Meta(m.shape, m.dtype))
        elif fn in ("detach", "detach_"):
            if fn == "detach_" and self.rng.random() < 0.5:
                return False
            self.method(name, fn, meta=Meta(m.shape, m.dtype))
            if fn == "detach_":
                self.vars[name] = Meta(m.shape, m.dtype)
        else:
            self.method(name, fn, meta=self.out_meta(m.shape, m.dtype, m))
        return True

    def backward(self) -> bool:
        """``y.backward()`` (scalar), with ``gradient=``, ``retain_graph``, or ``autograd.grad``."""
        rng = self.rng
        src = self.pick(lambda o: o.rg and not o.leaf) or self.pick(lambda o: o.rg)
        if src is None:
            return False
        name, m = src
        leaves = [n for n, o in self.vars.items() if o.leaf and o.rg]
        kwargs: dict = {}
        if rng.random() < 0.5:
            kwargs["retain_graph"] = True
        if m.ndim and rng.random() < 0.8 or rng.random() < 0.1:
            gshape = m.shape if rng.random() < 0.9 else self.broadcastable_shape(m.shape)
            g = self.call(
                rng.choice(["ones", "randn"]),
                self.size_args(gshape),
                {"dtype": DType(m.dtype)} if m.dtype != "float32" else {},
                Meta(gshape, m.dtype),
            )
            grad_arg: object = Ref(g.target)
        else:
            grad_arg = None
        if rng.random() < 0.3 and leaves and self.has("autograd", "grad"):
            inputs = rng.sample(leaves, min(len(leaves), rng.randint(1, 2)))
            kw = dict(kwargs)
            if grad_arg is not None:
                kw["grad_outputs"] = grad_arg
            if rng.random() < 0.7:
                kw["allow_unused"] = True
            if rng.random() < 0.2:
                kw["create_graph"] = True
            metas = [
                Meta(
                    self.vars[i].shape,
                    self.vars[i].dtype,
                    bool(kw.get("create_graph")),
                    not kw.get("create_graph"),
                )
                for i in inputs
            ]
            self.call("autograd.grad", (Ref(name), [Ref(i) for i in inputs]), kw, metas)
            return True
        if grad_arg is not None:
            kwargs["gradient"] = grad_arg
        if rng.random() < 0.15 and self.has("autograd", "backward"):
            kw = {"grad_tensors": kwargs.pop("gradient")} if "gradient" in kwargs else {}
            kw.update(kwargs)
            self.emit(Stmt("call", "autograd.backward", (Ref(name),), kw, self.new_name()))
        else:
            self.emit(Stmt("method", "backward", (Ref(name),), kwargs, self.new_name()))
        return True

    def grad_assign(self) -> bool:
        """``x.grad = tensor`` (same shape, or a bad one sometimes) or ``x.grad = None``."""
        src = self.pick(lambda o: o.leaf and o.is_float)
        if src is None:
            return False
        name, m = src
        if self.rng.random() < 0.25:
            value: object = None
        else:
            shape = m.shape if self.rng.random() < 0.9 else self.rand_shape()
            value = Ref(self.fresh(shape, m.dtype, rg=False)[0])
        self.emit(Stmt("setattr", "grad", (Ref(name), value)))
        return True

    def grad_block(self) -> bool:
        """``with torch.no_grad()/enable_grad()/set_grad_enabled(b)/inference_mode():`` and 1-3 statements."""
        rng = self.rng
        fn, args, enabled = rng.choice(
            [
                ("no_grad", (), False),
                ("no_grad", (), False),
                ("enable_grad", (), True),
                ("set_grad_enabled", (False,), False),
                ("set_grad_enabled", (True,), True),
                ("inference_mode", (), False),
            ]
        )
        if not self.has("module", fn):
            return False
        block = Stmt("block", fn, args)
        outer, outer_mode = self.current, self.grad_enabled
        self.current.append(block)
        self.current, self.grad_enabled = block.body, enabled
        weights, funcs = zip(*self.ops)
        try:
            for _ in range(rng.randint(1, 3)):
                for _ in range(8):
                    f = rng.choices(funcs, weights=weights)[0]
                    if f is self.grad_block or f is self.backward:
                        continue
                    if self.attempt(f):
                        break
        finally:
            self.current, self.grad_enabled = outer, outer_mode
        return True

    # ------------------------------------------------------------------ protocols and inspection

    def protocol(self) -> bool:
        """len/list/iter/bool/float/int/operator.index/abs/``in`` on tensors."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = self.rng.choice(
            ["len", "list", "iter", "bool", "float", "int", "index", "contains", "bool", "float"]
        )
        if fn in ("bool", "float", "int", "index") and m.numel != 1 and self.rng.random() < 0.7:
            one = self.pick(lambda o: o.numel == 1)
            if one is None:
                return False
            name, m = one
        if fn == "contains":
            item: object = self.scalar(m.dtype)
            if self.rng.random() < 0.3:
                other = self.pick()
                item = Ref(other[0]) if other else item
            self.emit(Stmt("protocol", fn, (item, Ref(name)), {}, self.new_name()))
            return True
        meta = None
        if fn in ("list", "iter") and m.ndim:
            meta = [self.out_meta(m.shape[1:], m.dtype, m) for _ in range(m.shape[0])]
        self.emit(Stmt("protocol", fn, (Ref(name),), {}, self.new_name()), meta)
        return True

    def inspect(self) -> bool:
        """Attributes and introspection methods: shape, dtype, grad, grad_fn, is_leaf, size, item, numpy..."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        rng = self.rng
        if rng.random() < 0.45:
            attr = rng.choice(
                ["shape", "dtype", "is_leaf", "requires_grad", "grad_fn", "grad", "ndim", "device"]
            )
            self.emit(Stmt("attr", attr, (Ref(name),), {}, self.new_name()))
            return True
        fn = rng.choice(
            [
                "item",
                "tolist",
                "size",
                "dim",
                "numel",
                "stride",
                "is_contiguous",
                "numpy",
                "is_floating_point",
                "element_size",
                "nelement",
                "equal",
            ]
        )
        if not self.has("Tensor", fn):
            return False
        args: tuple = ()
        if fn == "size" and m.ndim and rng.random() < 0.5:
            args = (self.dim(m.ndim),)
        if fn == "equal":
            other = self.pick()
            args = (Ref(other[0]),) if other else (Ref(name),)
        if fn == "item" and m.numel != 1:
            one = self.pick(lambda o: o.numel == 1)
            if one is not None:
                name = one[0]
        if fn == "numpy" and m.rg and rng.random() < 0.7:
            self.emit(
                Stmt(
                    "method",
                    "numpy",
                    (Ref(self.method(name, "detach", meta=Meta(m.shape, m.dtype)).target),),
                    {},
                    self.new_name(),
                )
            )
            return True
        self.method(name, fn, args)
        return True

    def random_inplace(self) -> bool:
        """uniform_/normal_/bernoulli_/fill_/zero_/copy_ (in place; random draws follow the seed)."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = self.rng.choice(["uniform_", "normal_", "bernoulli_", "fill_", "zero_", "copy_"])
        if not self.has("Tensor", fn):
            return False
        args: tuple = ()
        if fn == "uniform_" and self.rng.random() < 0.5:
            args = (-1.0, 2.0)
        elif fn == "normal_" and self.rng.random() < 0.5:
            args = (1.0, 0.5)
        elif fn == "bernoulli_":
            args = (self.rng.choice([0.5, 0.2]),)
        elif fn == "fill_":
            args = (self.scalar(m.dtype),)
        elif fn == "copy_":
            other = self.pick(lambda o: broadcast(o.shape, m.shape) == m.shape)
            if other is None:
                return False
            args = (Ref(other[0]),)
            if other[1].rg and self.grad_enabled and m.is_float:
                self.vars[name] = Meta(m.shape, m.dtype, True, False)
        self.method(name, fn, args, meta=Meta(m.shape, m.dtype, m.rg, m.leaf))
        return True

    def compare_all(self) -> bool:
        """``torch.equal``/``allclose``/``is_tensor``/``numel``/``is_floating_point`` module functions."""
        src = self.pick()
        if src is None:
            return False
        name, m = src
        fn = self.rng.choice(["equal", "allclose", "is_tensor", "numel", "is_floating_point"])
        if not self.has("module", fn):
            return False
        if fn in ("equal", "allclose"):
            other = self.pick(lambda o: o.dtype == m.dtype) or (name, m)
            self.call(fn, (Ref(name), Ref(other[0])))
        else:
            self.call(fn, (Ref(name),))
        return True


def _map_nested(data: object, f: Callable) -> object:
    if isinstance(data, list):
        return [_map_nested(d, f) for d in data]
    return f(data)


def generate(seed: int, index: int, api: dict | None = None, n_statements: int | None = None) -> list:
    """Program number ``index`` of the run seeded by ``seed`` (deterministic)."""
    rng = random.Random(seed * 1_000_003 + index)
    n = n_statements if n_statements is not None else rng.randint(4, 16)
    return Generator(rng, api).program(n, seed=rng.randrange(2**31))
