"""Tests of the differential fuzzer, and its CI mode against rustgrad (no PyTorch needed).

``test_ci_mode`` runs a few thousand seeded random programs through rustgrad in worker processes and
fails, printing minimal reproducers as Python source, on any abort, hang, Rust panic, exception of a
class PyTorch does not use for bad arguments, or argument changed by a statement that raised. The
other tests check the fuzzer's own machinery on a stand-in module and synthetic outcomes.
"""

from __future__ import annotations

import random
import sys
import types

import numpy as np
import pytest

from .generator import Generator, generate
from .interpreter import encode_array, run_program
from .program import DType, Ref, Stmt, render, walk
from .runner import (
    CI_CATEGORIES,
    Finding,
    Pool,
    Worker,
    ci_findings,
    format_report,
    fuzz,
    oracle_findings,
    shrink,
)

CI_SEED = 20240601
CI_PROGRAMS = 4000


def _tensor_summary(values, dtype="float32", **flags) -> dict:
    arr = np.asarray(values, dtype=dtype)
    info = {"dtype": dtype, "shape": arr.shape, "requires_grad": False, "is_leaf": True, "grad_fn": None}
    info.update(flags)
    info["values"] = encode_array(arr)
    return info


def _ok(summary) -> dict:
    return {"status": "ok", "value": ("tensor", summary)}


def _raise(exc: str, base: str | None = None) -> dict:
    return {"status": "raise", "exc": exc, "base": base or exc, "standard": True, "msg": "m", "mutated": []}


def _result(*outcomes, final=None) -> dict:
    return {"status": "ok", "outcomes": dict(enumerate(outcomes)), "final": final or {}, "detail": ""}


PROGRAM = [Stmt("call", "tensor", ([1.0],), {}, "v1"), Stmt("method", "exp", (Ref("v1"),), {}, "v2")]


def test_generated_programs_render_as_valid_python():
    """Every generated program renders as source that compiles, with its statements in order."""
    for i in range(300):
        stmts = generate(3, i)
        source = render(stmts)
        compile(source, f"<program {i}>", "exec")
        assert source.startswith(("import torch", "import operator"))
        assert "torch.manual_seed(" in source
    assert generate(3, 7) == generate(3, 7), "programs must be deterministic in (seed, index)"


def test_rendered_source_matches_the_interpreter():
    """A program's rendered source, executed, binds the same values as the interpreter does."""
    import rustgrad

    stmts = [
        Stmt("call", "manual_seed", (3,)),
        Stmt("call", "randn", (2, 3), {"requires_grad": True}, "v1"),
        Stmt("call", "tensor", ([[1.5, -2.0, 0.25]],), {"dtype": DType("float32")}, "v2"),
        Stmt("binop", "*", (Ref("v1"), Ref("v2")), {}, "v3"),
        Stmt("getitem", "", (Ref("v3"), (slice(None), slice(1, None), None)), {}, "v4"),
        Stmt("method", "sum", (Ref("v4"),), {}, "v5"),
        Stmt("method", "backward", (Ref("v5"),), {}, "v6"),
        Stmt("protocol", "float", (Ref("v5"),), {}, "v7"),
    ]
    outcomes, final = run_program(rustgrad, stmts)
    assert all(o["status"] == "ok" for o in outcomes.values()), outcomes
    namespace: dict = {}
    exec(render(stmts, import_line="import rustgrad as torch"), namespace)  # noqa: S102 - our own program
    assert namespace["v7"] == outcomes[7]["value"][2]
    assert np.array_equal(
        namespace["v1"].grad.numpy(),
        np.frombuffer(final["v1"]["grad"]["values"][2], np.float32).reshape(2, 3),
    )
    assert outcomes[6]["grads"]["v1"]["shape"] == (2, 3)


def test_bad_statements_are_about_one_in_ten():
    """About one statement in ten goes through the deliberately-bad path."""
    gen = Generator(random.Random(0), bad_rate=0.1)
    calls = {"bad": 0}
    real_bad = gen.bad_statement

    def counting_bad():
        calls["bad"] += 1
        real_bad()

    gen.bad_statement = counting_bad
    gen.program(3000, seed=0)
    assert 0.07 < calls["bad"] / 3000 < 0.13
    assert any(s.kind == "call" and s.fn in ("zeros", "arange", "tensor") and s.target for s in gen.current)


def test_worker_ties_abort_hang_and_panic_to_their_program():
    """A worker that aborts or hangs is restarted and the failure is tied to the right statement."""
    worker = Worker(sys.executable, "fuzz.fake_module", timeout=3.0, memory_gib=0)
    try:
        worker.start()
        cases = {
            "ok": [Stmt("call", "ok", (5,), {}, "v1")],
            "abort": [Stmt("call", "ok", (), {}, "v1"), Stmt("call", "abort", (), {}, "v2")],
            "hang": [Stmt("call", "hang", (), {}, "v1")],
            "panic": [Stmt("call", "panic", (), {}, "v1")],
            "keyerror": [Stmt("call", "keyerror", (), {}, "v1")],
        }
        results = {name: worker.run(i, stmts) for i, (name, stmts) in enumerate(cases.items())}
        after = worker.run(99, cases["ok"])
    finally:
        worker.close()
    assert results["ok"]["outcomes"][0]["value"] == ("py", "int", 5)
    assert results["abort"]["status"] == "crash" and results["abort"]["crash_index"] == 1
    assert "SIGABRT" in results["abort"]["detail"]
    assert results["hang"]["status"] == "hang"
    assert after["status"] == "ok" and worker.restarts == 2
    categories = {name: [f.category for f in ci_findings(cases[name], r)] for name, r in results.items()}
    assert categories == {
        "ok": [],
        "abort": ["crash"],
        "hang": ["hang"],
        "panic": ["panic"],
        "keyerror": ["nonstandard-exception"],
    }
    abort_finding = ci_findings(cases["abort"], results["abort"])[0]
    assert abort_finding.op_key == "call:abort"


def test_mutated_arguments_are_detected_when_a_statement_raises():
    """The unchanged-on-raise rule: a tensor argument changed by a call that then raised is reported."""

    class Tensor:
        def __init__(self, values):
            self.values = np.asarray(values, dtype=np.float32)
            self.dtype, self.requires_grad, self.is_leaf, self.grad_fn, self.grad = (
                "float32",
                False,
                True,
                None,
                None,
            )

        shape = property(lambda self: self.values.shape)
        detach = cpu = lambda self: self
        numpy = lambda self: self.values

    def half_done(t):
        t.values[0] = 42.0
        raise RuntimeError("failed half way")

    def clean_fail(t):
        raise RuntimeError("failed before touching anything")

    mod = types.SimpleNamespace(
        Tensor=Tensor,
        dtype=str,
        no_grad=lambda: __import__("contextlib").nullcontext(),
        make=lambda: Tensor([1.0, 2.0]),
        half_done=half_done,
        clean_fail=clean_fail,
    )
    stmts = [
        Stmt("call", "make", (), {}, "v1"),
        Stmt("call", "half_done", (Ref("v1"),), {}, "v2"),
        Stmt("call", "clean_fail", (Ref("v1"),), {}, "v3"),
    ]
    outcomes, _ = run_program(mod, stmts)
    assert outcomes[1]["mutated"] and not outcomes[2]["mutated"]
    findings = ci_findings(stmts, {"status": "ok", "outcomes": outcomes, "final": {}})
    assert [(f.category, f.index) for f in findings] == [("mutated-on-raise", 1)]


def test_oracle_comparison_categories_and_tolerances():
    """Values within float32 tolerance match; each kind of difference gets its category."""
    base = _tensor_summary([1.0, 2.0])

    def category(rg_outcome, th_outcome):
        found = oracle_findings(PROGRAM, _result(_ok(base), rg_outcome), _result(_ok(base), th_outcome))
        return found[0].category if found else None

    assert category(_ok(_tensor_summary([1.0, 2.00001])), _ok(base)) is None
    assert (
        category(_ok(_tensor_summary([float("nan"), 2.0])), _ok(_tensor_summary([float("nan"), 2.0]))) is None
    )
    assert category(_ok(_tensor_summary([1.0, 2.01])), _ok(base)) == "value"
    assert category(_ok(_tensor_summary([1.0, 2.0], "float64")), _ok(base)) == "dtype"
    assert (
        category(_ok(_tensor_summary([1.0])), _ok(_tensor_summary([1.0]).copy() | {"shape": (1, 1)}))
        == "shape"
    )
    assert category(_ok(_tensor_summary([1.0, 2.0], requires_grad=True)), _ok(base)) == "flag"
    assert (
        category(
            _ok(_tensor_summary([1.0, 2.0], grad_fn="WhereBackward0")),
            _ok(_tensor_summary([1.0, 2.0], grad_fn="LeakyReluBackward0")),
        )
        == "grad_fn"
    )
    assert category(_raise("RuntimeError"), _ok(base)) == "raised-vs-not"
    assert category(_raise("RuntimeError"), _raise("TypeError")) == "exception-class"
    assert category(_raise("RuntimeError"), _raise("RuntimeError")) is None
    crash = {
        "status": "crash",
        "outcomes": {0: _ok(base)},
        "final": {},
        "detail": "worker died (SIGABRT)",
        "crash_index": 1,
    }
    found = oracle_findings(PROGRAM, crash, _result(_ok(base), _ok(base)))
    assert [(f.category, f.op_key) for f in found] == [("crash", "method:exp")]


def test_shrink_keeps_only_what_the_finding_needs():
    """Delta debugging drops every statement the finding does not depend on."""
    stmts = [Stmt("call", "manual_seed", (0,))] + [
        Stmt("call", "tensor", ([float(i)],), {}, f"v{i}") for i in range(12)
    ]
    stmts.append(
        Stmt("block", "no_grad", (), {}, None, [Stmt("method", "exp", (Ref("v3"),), {"out": 1}, "v20")])
    )
    culprit = Finding("value", "method:exp", 14, "statement 14", "x")

    def reproduces(candidate):
        names = {s.target for s in walk(candidate)}
        for i, s in enumerate(walk(candidate)):
            if s.fn == "exp" and "v3" in names:
                return Finding("value", "method:exp", i, f"statement {i}", "x")
        return None

    program, finding = shrink(stmts, culprit, reproduces)
    assert [s.target for s in program] == ["v3", "v20"]
    assert program[1].kwargs == {} and finding.index == 1


def test_report_lists_reproducers_as_source():
    """The Markdown report carries counts and each reproducer as Python source."""
    f = Finding(
        "panic",
        "method:sum",
        1,
        "statement 1",
        "raises PanicException: index out of bounds",
        program=PROGRAM,
        program_id=3,
    )
    from .runner import Report

    text = format_report(Report(10, 1.0, {"panic": 2}, [f]), import_line="import rustgrad as torch")
    assert "| panic | 2 | 1 |" in text
    assert "import rustgrad as torch\n\nv1 = torch.tensor([1.0])\nv2 = v1.exp()  # <- panic" in text


def _ci_run() -> tuple:
    pool = Pool(sys.executable, None, jobs=2, timeout=10.0)
    try:
        api = pool.start()
        programs = [(i, generate(CI_SEED, i, api)) for i in range(CI_PROGRAMS)]
        report = fuzz(pool, programs, shrink_findings=True, max_attempts=80, shrink_seconds=60.0)
    finally:
        pool.close()
    return report


def test_ci_mode():
    """A few thousand seeded programs under rustgrad alone: no crash, hang, panic, non-standard
    exception or argument changed by a statement that raised."""
    report = _ci_run()
    assert report.programs == CI_PROGRAMS
    failing = report.failing(CI_CATEGORIES)
    if failing:
        shown = type(report)(
            report.programs,
            report.seconds,
            {c: n for c, n in report.counts.items() if c in CI_CATEGORIES},
            failing,
            report.restarts,
        )
        pytest.fail(
            "fuzzing found problems in rustgrad; minimal reproducers:\n\n"
            + format_report(shown, import_line="import rustgrad as torch"),
            pytrace=False,
        )
