"""Runs every benchmark of issue 5 and prints (and saves to benchmarks/RESULTS.md) a side-by-side table.

    python benchmarks/run.py [--scale 0.3] [--threads N] [--no-write]

- the Rust API:      cargo run --release -p rustgrad-core --example bench
- rustgrad (Python): benchmarks/bench_python.py --framework rustgrad   (this interpreter)
- numpy:             benchmarks/bench_python.py --framework numpy      (this interpreter)
- micrograd:         benchmarks/bench_python.py --framework micrograd  (this interpreter, if micrograd imports)
- PyTorch:           benchmarks/bench_python.py --framework torch, with $TORCH_PYTHON, else
                     /tmp/torchenv/bin/python if it exists, else this interpreter if it can import torch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_PY = HERE / "bench_python.py"
DEFAULT_TORCH_PYTHON = Path("/tmp/torchenv/bin/python")
THREAD_VARS = ("RAYON_NUM_THREADS", "MATMUL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# (row, issue row, bench_python group, what, unit, target). The issue row is "14.k" for row k of issue
# 14's table, whose targets these are, or names the earlier issue a row comes from (5, 8, 13). Ratio =
# rustgrad / PyTorch, so for GFLOP/s (higher is better) the target is a lower bound; "≤ 0.1 MB",
# "≤ 2 s" and "≤ 300 B/op" are absolute bounds on rustgrad's figure.
WORKLOADS = [
    ("forward_op", "14.1", "forward_op", "forward of c = a*b + a, 1-element f32, requires_grad", "µs/op", "≤ 0.2x"),
    ("backward_chain", "14.2", "backward_chain", "backward of a 1,000-op chain y = y*b + a", "µs/node", "≤ 0.05x"),
    (
        "micrograd_mlp",
        "14.3",
        "micrograd_mlp",
        "micrograd's demo: MLP 2-16-16-1 of 0-d tensors, 100 moons, fwd+bwd+SGD step, gc off",
        "ms/step",
        "≤ 0.1x",
    ),
    ("micrograd_mlp_gc", "14.3", "micrograd_mlp", "the same with Python's gc on", "ms/step", "≤ 0.1x"),
    ("tanh_sum_1e6", "14.4", "tanh_sum", "tanh(x*x + 3*x).sum() fwd+bwd, 1e6 f32", "ms", "≤ 1.0x"),
    ("tanh_sum_1e7", "14.5", "tanh_sum", "tanh(x*x + 3*x).sum() fwd+bwd, 1e7 f32", "ms", "≤ 0.35x"),
    ("mlp_sgd_mse", "14.6", "mlp_sgd", "MLP 784-256-10 ReLU, batch 64, SGD step, MSE loss", "ms/step", "≤ 0.8x"),
    ("mlp_sgd_ce", "14.6", "mlp_sgd", "MLP 784-256-10 ReLU, batch 64, SGD step, cross-entropy", "ms/step", "≤ 0.8x"),
    ("chain_1e5_backward", "14.7", "chain_1e5", "backward of a 100,000-op chain (fresh process)", "s", "≤ 0.1x"),
    ("chain_1e5_peak_mem", "14.8", "chain_1e5", "peak RSS growth, build + backward of it", "MB", "≤ 0.25x"),
    ("chain_1e5_bytes_per_op", "14.8", "chain_1e5", "the same per op", "B/op", "≤ 300 B/op"),
    ("chain_1e6_total", "14.9", "chain_1e6", "a 1,000,000-op chain: forward + backward + free (fresh process)", "s", "≤ 2 s"),
    ("chain_1e6_backward", "14.9", "chain_1e6", "its backward alone", "s", "completes"),
    ("chain_1e6_peak_mem", "14.9", "chain_1e6", "peak RSS growth, build + backward of it", "MB", "-"),
    ("chain_1e6_bytes_per_op", "14.9", "chain_1e6", "the same per op", "B/op", "≤ 300 B/op"),
    *[
        (f"matmul_{d}_{n}", "5", "matmul", f"f32 matmul {n}x{n}, {what}", "GFLOP/s", "≥ 0.95x")
        for n in (256, 512, 1024, 2048)
        for d, what in (("fwd", "a @ b (2n³ flop)"), ("bwd", "(a @ b).sum().backward() (4n³ flop)"))
    ],
    ("lenet_step", "13", "models", "LeNet-5 SGD step, batch 64 of 1x28x28, cross-entropy", "ms/step", "≤ 1.0x"),
    ("lstm_step", "13", "models", "2-layer LSTM step, batch 32, seq 35, hidden 256, Adam", "ms/step", "≤ 1.0x"),
    (
        "transformer_step",
        "13",
        "models",
        "2-layer transformer encoder step, batch 16, seq 128, d_model 256, Adam",
        "ms/step",
        "≤ 1.0x",
    ),
    (
        "per_sample_vmap",
        "15.3",
        "per_sample",
        "per-sample grads, MLP 32-64-10, batch 64: vmap(grad(loss)) over functional_call",
        "ms",
        "-",
    ),
    ("per_sample_loop", "15.3", "per_sample", "the same as a Python loop of 64 backward calls", "ms", "-"),
    ("train_rss_growth", "8", "train_rss", "RSS growth over 2,000 SGD steps of an MLP 64-128-10", "MB", "≤ 0.1 MB"),
]
COLUMNS = [
    ("rust", "Rust API"),
    ("rustgrad", "rustgrad Python"),
    ("torch", "PyTorch"),
    ("numpy", "numpy"),
    ("micrograd", "micrograd"),
]


def _run_json_lines(cmd: list[str], label: str, env: dict, errors: dict) -> dict[str, dict]:
    """Runs cmd and returns its JSON rows keyed by workload; failed groups go to errors[group]."""
    print(f"== {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=1800, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        errors["*"] = f"failed: {exc}"
        print(f"!! {label} failed: {exc}", file=sys.stderr)
        return {}
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if "error" in row:
                errors[row["group"]] = row["error"]
            else:
                results[row["workload"]] = row
            print(f"   {line[:200]}", file=sys.stderr)
    if proc.returncode != 0:
        print(f"!! {label} exited with status {proc.returncode}", file=sys.stderr)
        if not errors:
            errors["*"] = f"exited with status {proc.returncode}"
    print(f"   ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return results


def find_torch_python() -> str | None:
    env = os.environ.get("TORCH_PYTHON")
    if env:
        return env
    if DEFAULT_TORCH_PYTHON.exists():
        return str(DEFAULT_TORCH_PYTHON)
    return sys.executable if _imports(sys.executable, "torch") else None


def _imports(python: str, module: str) -> bool:
    return (
        subprocess.run([python, "-c", f"import {module}"], check=False, capture_output=True).returncode == 0
    )


def machine_info() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{model}, {nproc} cores{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


class OtherLoad:
    """How many cores other processes kept busy during the run, on average.

    CPU time of the whole machine (/proc/stat) minus this process's and its children's, over the wall
    time. Linux only (None elsewhere).
    """

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None
        machine = (sum(fields) - fields[3] - fields[4]) / hz  # all but idle and iowait
        ours = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime for who in WHO)
        return machine, ours, time.perf_counter()

    def cores(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        machine, ours, wall = (e - s for e, s in zip(end, self.start))
        return max(0.0, (machine - ours) / wall)


WHO = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)


def _tool_version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def _cell(row: dict | None, failed: bool) -> str:
    if row is None:
        return "FAILED" if failed else "-"
    median = row["median"]
    if row["repeats"] == 1:
        return _num(median)
    if row["unit"] == "MB":  # near zero: a percentage says nothing, give the range
        return f"{_num(median)} ({_num(row['min'])}–{_num(row['max'])})"
    spread = 100 * row["iqr"] / median if median else 0.0
    return f"{_num(median)} ±{spread:.0f}%"


def _verdict(key: str, target: str, rg: dict | None, pt: dict | None) -> str:
    """The target, with ✓ or ✗ when this run's figures decide it."""
    if target == "completes":
        return "completes ✓" if rg else target
    if target.endswith(("MB", " s", "B/op")):  # an absolute bound on rustgrad's figure
        return f"{target} {'✓' if rg['median'] <= float(target.split()[1]) else '✗'}" if rg else target
    if target.endswith("x") and rg and pt and pt["median"]:
        ratio, bound = rg["median"] / pt["median"], float(target.split()[1][:-1])
        ok = ratio >= bound if target.startswith("≥") else ratio <= bound
        return f"{target} {'✓' if ok else '✗'}"
    return target


def build_table(results: dict[str, dict[str, dict]], errors: dict[str, dict[str, str]]) -> list[str]:
    cols = [(c, n) for c, n in COLUMNS if results[c] or errors[c]]
    header = ["#", "workload", "unit"] + [name for _, name in cols] + ["rustgrad/PyTorch", "target"]
    rows = []
    for key, issue_row, group, _, unit, target in WORKLOADS:
        cells = [_cell(results[c].get(key), group in errors[c]) for c, _ in cols]
        rg, pt = results["rustgrad"].get(key), results["torch"].get(key)
        ratio = f"{rg['median'] / pt['median']:.2f}x" if rg and pt and pt["median"] else "-"
        rows.append([str(issue_row), key, unit] + cells + [ratio, _verdict(key, target, rg, pt)])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    return [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [fmt(r) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the number of repeats")
    parser.add_argument(
        "--threads",
        "--torch-threads",
        type=int,
        default=0,
        help="threads for every framework: torch.set_num_threads(n), RAYON_NUM_THREADS, OPENBLAS_NUM_THREADS "
        "... (default 0: each framework's own default, i.e. all cores)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = _load()
    other_load = OtherLoad()
    scale = [f"--scale={args.scale}"]
    env = dict(os.environ)
    if args.threads > 0:
        env.update({var: str(args.threads) for var in THREAD_VARS})

    results: dict[str, dict[str, dict]] = {col: {} for col, _ in COLUMNS}
    errors: dict[str, dict[str, str]] = {col: {} for col, _ in COLUMNS}
    notes = []
    if shutil.which("cargo"):
        cargo = ["cargo", "run", "--quiet", "--release", "-p", "rustgrad-core", "--example", "bench"]
        results["rust"] = _run_json_lines(cargo + ["--", str(args.scale)], "Rust API", env, errors["rust"])
    else:
        notes.append("cargo not found: Rust API column skipped.")
    py = [sys.executable, str(BENCH_PY)]
    results["rustgrad"] = _run_json_lines(
        py + ["--framework", "rustgrad"] + scale, "rustgrad", env, errors["rustgrad"]
    )
    results["numpy"] = _run_json_lines(py + ["--framework", "numpy"] + scale, "numpy", env, errors["numpy"])
    if _imports(sys.executable, "micrograd"):
        results["micrograd"] = _run_json_lines(
            py + ["--framework", "micrograd"] + scale, "micrograd", env, errors["micrograd"]
        )
    else:
        notes.append("micrograd is not installed: `pip install micrograd` to fill its column.")
    torch_python = find_torch_python()
    if torch_python:
        cmd = [torch_python, str(BENCH_PY), "--framework", "torch", f"--threads={args.threads}"] + scale
        results["torch"] = _run_json_lines(cmd, "torch", env, errors["torch"])
    else:
        notes.append(
            "PyTorch is not installed: `pip install torch` (or set TORCH_PYTHON) to fill its column."
        )
    for col, name in COLUMNS:
        for group, error in errors[col].items():
            notes.append(f"{name}: {'the run' if group == '*' else group} failed: {error}")
    elapsed = time.perf_counter() - started
    others = other_load.cores()
    if others is not None and others >= 0.2:
        notes.insert(
            0,
            f"other processes kept {others:.1f} core(s) busy on average during this run: timings "
            "(PyTorch's multi-threaded ones most) are inflated; rerun on an idle machine or with --threads 1.",
        )

    versions = []
    rustc = _tool_version(["rustc", "--version"])
    if rustc and results["rust"]:
        versions.append(f"Rust API: {rustc}")
    for col, name in COLUMNS[1:]:
        row = next(iter(results[col].values()), None)
        if row:
            threads = f", threads={row['threads']}" if "threads" in row else ""
            python = f", Python {row['python']}" if "python" in row else ""
            versions.append(f"{name} {row.get('version', '?')}{python}{threads}")
    if args.threads > 0:
        threads_note = f"Every framework limited to {args.threads} thread(s) (`--threads {args.threads}`)."
    else:
        threads_note = (
            "Each framework uses its default threads (`--threads 0`): PyTorch's intra-op pool, rustgrad's "
            "rayon pool and numpy's BLAS all use every core."
        )
    table = build_table(results, errors)
    print("\n".join(table))
    for note in notes:
        print(f"Note: {note}")
    print(f"total run time {elapsed:.0f} s", file=sys.stderr)

    if args.no_write:
        return
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    legend = "\n".join(f"- `{key}` ({unit}): {desc}" for key, _, _, desc, unit, _ in WORKLOADS)
    text = f"""# Benchmark results

Generated by `python benchmarks/run.py{"" if args.scale == 1 else f" --scale {args.scale:g}"}\
{f" --threads {args.threads}" if args.threads else ""}` on {now}, in {elapsed:.0f} s.

Machine: {machine_info()}; load average (1/5/15 min) {load_before} before the run, {_load()} after;
other processes used {"?" if others is None else f"{others:.2f}"} core(s) on average during the run.
Versions: {"; ".join(versions) or "-"}.
{threads_note}

Cells are medians, ± the interquartile range as a percent of the median (MB rows: median and min–max;
a single figure is a single run). Lower is better except for GFLOP/s. `rustgrad/PyTorch` is
rustgrad-through-Python's median over PyTorch's from this run (for GFLOP/s, above 1 means rustgrad is
faster; elsewhere below 1 does); `target` is the issue's, with ✓ / ✗ for this run. `#` is the row of
issue 14's table (14.k) or the issue a row comes from (5, 8, 13).
numpy runs `tanh_sum_*` and `matmul_*` with hand-written backwards; micrograd runs rows 14.1-14.3.

{chr(10).join(table)}

{legend}
{"".join(chr(10) + "Note: " + n for n in notes)}
"""
    (HERE / "RESULTS.md").write_text(text)
    print(f"\nwrote {HERE / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
