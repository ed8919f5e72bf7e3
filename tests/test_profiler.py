"""The autograd profiler: recorded ranges, their names and nesting, the table, the trace."""

from __future__ import annotations

import json
import re
import threading

import pytest
import rustgrad as torch
from rustgrad import _rustgrad
from rustgrad.autograd.profiler import profile as autograd_profile
from rustgrad.profiler import ProfilerActivity, profile, record_function, schedule


def _program(t):
    x = t.randn(10, 10, requires_grad=True)
    y = t.randn(10, 10)
    with t.profiler.profile(
        activities=[t.profiler.ProfilerActivity.CPU], record_shapes=True, profile_memory=True
    ) as p:
        with t.profiler.record_function("my_block"):
            z = x * y
            for _ in range(10):
                z = z + y
            w = (z @ y).relu().sum()
        w.backward()
    return p


def test_forward_and_backward_ops_are_recorded_with_pytorch_names():
    prof = _program(torch)
    names = [e.name for e in prof.events()]
    for name in ["my_block", "aten::mul", "aten::add", "aten::matmul", "aten::relu", "aten::sum"]:
        assert name in names
    for node in ["MulBackward0", "AddBackward0", "MmBackward0", "ReluBackward0", "SumBackward0"]:
        assert node in names
        assert f"autograd::engine::evaluate_function: {node}" in names
    assert "autograd::engine::evaluate_function: torch::autograd::AccumulateGrad" in names


def test_counts_times_and_nesting():
    prof = _program(torch)
    averages = {a.key: a for a in prof.key_averages()}
    add = averages["aten::add"]
    assert add.count == 10
    assert add.cpu_time_total >= add.self_cpu_time_total >= 0
    assert add.cpu_time == pytest.approx(add.cpu_time_total / 10)
    block = next(e for e in prof.events() if e.name == "my_block")
    children = [c.name for c in block.cpu_children]
    assert children.count("aten::add") == 10 and "aten::mul" in children
    for c in block.cpu_children:
        assert c.cpu_parent is block
        assert block.start_us <= c.start_us <= c.end_us <= block.end_us
    # The backward node runs inside its evaluate_function range.
    node = next(e for e in prof.events() if e.name == "MulBackward0")
    assert node.cpu_parent is not None
    assert node.cpu_parent.name == "autograd::engine::evaluate_function: MulBackward0"
    assert block.self_cpu_time_total <= block.cpu_time_total


def test_record_shapes_and_memory():
    prof = _program(torch)
    by_shape = prof.key_averages(group_by_input_shape=True)
    mul = next(a for a in by_shape if a.key == "aten::mul")
    assert mul.input_shapes == [[10, 10], [10, 10]]
    relu = next(e for e in prof.events() if e.name == "aten::relu")
    assert relu.input_shapes == [[10, 10]]
    assert relu.cpu_memory_usage == 400
    add = next(a for a in prof.key_averages() if a.key == "aten::add")
    assert add.cpu_memory_usage == 4000
    # A view allocates nothing.
    x = torch.randn(4, 4)
    with profile(profile_memory=True) as p2:
        x.view(16)
        x.t()
    assert [e.cpu_memory_usage for e in p2.events()] == [0, 0]


def test_table_layout():
    prof = _program(torch)
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=5)
    lines = table.splitlines()
    rule = lines[0]
    assert set(rule.replace(" ", "")) == {"-"}
    assert lines[2] == rule and lines[-2] == rule
    header = lines[1].split()
    assert (
        " ".join(header)
        == "Name Self CPU % Self CPU CPU total % CPU total CPU time avg CPU Mem Self CPU Mem # of Calls"
    )
    assert len(lines) == 3 + 5 + 2
    assert re.fullmatch(r"Self CPU time total: \d+\.\d{3}(us|ms|s)", lines[-1])
    # Widths: the name column fits the longest name (at most 55), the others 12, each then 2 spaces.
    widths = [len(w) for w in rule.split("  ") if w]
    assert widths[0] == 55 and set(widths[1:]) == {12}
    shaped = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=3)
    assert shaped.splitlines()[1].rstrip().endswith("Input Shapes")
    rows = [a.key for a in prof.key_averages()]
    assert str(prof.key_averages()).count("\n") == len(rows) + 5
    # sort_by orders the rows.
    by_calls = prof.key_averages().table(sort_by="count", row_limit=1).splitlines()[3]
    assert by_calls.split()[0] in ("aten::add", "AddBackward0", "autograd::engine::evaluate_function:")


def test_plain_table_and_truncated_names():
    x = torch.randn(3)
    with torch.autograd.profiler.profile() as prof, record_function("a_very_long_name_" * 5):
        x.mul(x)
    table = prof.key_averages().table(row_limit=2)
    lines = table.splitlines()
    assert lines[1].split("  ")[-2].strip() == "# of Calls"
    assert "a_very_long_name_a_very_long_name_a_very_long_name_a..." in table
    assert "aten::mul" in str(prof)


def test_chrome_trace(tmp_path):
    prof = _program(torch)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    data = json.loads(path.read_text())
    complete = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(complete) == len(prof.events())
    for e in complete:
        assert {"name", "ts", "dur", "pid", "tid", "cat", "args"} <= set(e)
        assert e["dur"] >= 0
    block = next(e for e in complete if e["name"] == "my_block")
    inside = [e for e in complete if e["name"] == "aten::add"]
    assert len(inside) == 10
    for e in inside:
        assert block["ts"] <= e["ts"] and e["ts"] + e["dur"] <= block["ts"] + block["dur"] + 1e-3
        assert e["cat"] == "cpu_op"


def test_with_stack_records_the_callers_line():
    x = torch.randn(3)
    with profile(with_stack=True) as prof:
        x.exp()  # the line recorded
    exp = next(e for e in prof.events() if e.name == "aten::exp")
    assert any(
        s.endswith("test_with_stack_records_the_callers_line") and "test_profiler.py" in s for s in exp.stack
    )


def test_nothing_is_recorded_when_off():
    x = torch.randn(3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pass
    x + x
    assert len(prof.events()) == 0
    assert not _rustgrad._profiler_enabled()
    with autograd_profile(enabled=False) as off:
        x + x
    with pytest.raises(RuntimeError):
        off.key_averages()
    # A range opened when no profile runs is a no-op.
    with record_function("nothing"):
        x + x


def test_decorator():
    @record_function("step")
    def step(v):
        return v * 2

    with profile() as prof:
        step(torch.ones(2))
    outer = next(e for e in prof.events() if e.name == "step")
    assert [c.name for c in outer.cpu_children] == ["aten::mul"]


def test_ops_on_other_threads():
    x = torch.randn(8, 8, requires_grad=True)

    def work():
        for _ in range(50):
            (x * 2).sum().backward()

    with profile() as prof:
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        work()
        for t in threads:
            t.join()
    counts = {a.key: a.count for a in prof.key_averages()}
    assert counts["aten::mul"] == 200
    assert counts["MulBackward0"] == 200
    assert len({e.thread for e in prof.events()}) >= 2


def test_schedule_and_on_trace_ready():
    traces = []
    x = torch.ones(2)
    with profile(
        schedule=schedule(wait=1, warmup=1, active=2), on_trace_ready=lambda p: traces.append(p.events())
    ) as p:
        for _ in range(5):
            x + x
            p.step()
    assert len(traces) >= 1
    assert [e.name for e in traces[0]] == ["aten::add"] * 2


def test_matches_pytorch_layout():
    real = pytest.importorskip("torch")
    ours = _program(torch).key_averages().table(sort_by="cpu_time_total", row_limit=4).splitlines()
    theirs = _program(real).key_averages().table(sort_by="cpu_time_total", row_limit=4).splitlines()
    assert ours[:3] == theirs[:3]
    assert ours[-2] == theirs[-2]
    assert ours[-1].split(":")[0] == theirs[-1].split(":")[0]
