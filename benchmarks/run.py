"""Runs every benchmark and prints (and saves to benchmarks/RESULTS.md) a side-by-side table.

    python benchmarks/run.py [--scale 0.3]

- the Rust API:      cargo run --release -p rustgrad-core --example bench
- rustgrad (Python): benchmarks/bench_python.py --framework rustgrad   (this interpreter)
- numpy:             benchmarks/bench_python.py --framework numpy      (this interpreter)
- PyTorch:           benchmarks/bench_python.py --framework torch, with $TORCH_PYTHON, else
                     /tmp/torchenv/bin/python if it exists, else this interpreter if it can import torch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_PY = HERE / "bench_python.py"
DEFAULT_TORCH_PYTHON = Path("/tmp/torchenv/bin/python")

WORKLOADS = [
    ("forward_op", "forward of c = a*b + a, 1-element f32, requires_grad", "us/op"),
    ("backward_chain", "backward of a 1,000-op chain y = y*b + a", "us/node"),
    ("tanh_sum_1e6", "tanh(x*x + 3*x).sum() fwd+bwd, 1e6 f32", "ms"),
]
COLUMNS = [("rust", "Rust API"), ("rustgrad", "rustgrad Python"), ("torch", "PyTorch"), ("numpy", "numpy")]


def _run_json_lines(cmd: list[str], label: str) -> dict[str, dict]:
    """Runs cmd and returns its JSON lines keyed by workload (empty on failure)."""
    print(f"== {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, check=False, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"!! {label} failed: {exc}", file=sys.stderr)
        return {}
    if proc.returncode != 0:
        print(f"!! {label} exited with status {proc.returncode}", file=sys.stderr)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            results[row["workload"]] = row
            print(f"   {line}", file=sys.stderr)
    return results


def find_torch_python() -> str | None:
    env = os.environ.get("TORCH_PYTHON")
    if env:
        return env
    if DEFAULT_TORCH_PYTHON.exists():
        return str(DEFAULT_TORCH_PYTHON)
    probe = subprocess.run([sys.executable, "-c", "import torch"], check=False, capture_output=True)
    return sys.executable if probe.returncode == 0 else None


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
    return f"{model}, nproc={nproc}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    median = row["median"]
    spread = 100 * row["iqr"] / median if median else 0.0
    return f"{median:.3g} ±{spread:.0f}%"


def build_table(results: dict[str, dict[str, dict]]) -> list[str]:
    header = ["workload", "unit"] + [name for _, name in COLUMNS] + ["rustgrad/PyTorch"]
    rows = []
    for key, _, unit in WORKLOADS:
        cells = [_cell(results[col].get(key)) for col, _ in COLUMNS]
        rg, pt = results["rustgrad"].get(key), results["torch"].get(key)
        ratio = f"{rg['median'] / pt['median']:.2f}x" if rg and pt and pt["median"] else "-"
        rows.append([key, unit] + cells + [ratio])
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
        "--torch-threads",
        type=int,
        default=1,
        help="intra-op threads for PyTorch (default 1, like rustgrad; 0 keeps PyTorch's default)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args()
    scale = [f"--scale={args.scale}"]

    results: dict[str, dict[str, dict]] = {col: {} for col, _ in COLUMNS}
    notes = []
    if shutil.which("cargo"):
        cargo = ["cargo", "run", "--quiet", "--release", "-p", "rustgrad-core", "--example", "bench"]
        results["rust"] = _run_json_lines(cargo + ["--", str(args.scale)], "Rust API")
    else:
        notes.append("cargo not found: Rust API column skipped.")
    results["rustgrad"] = _run_json_lines(
        [sys.executable, str(BENCH_PY), "--framework", "rustgrad"] + scale, "rustgrad"
    )
    results["numpy"] = _run_json_lines(
        [sys.executable, str(BENCH_PY), "--framework", "numpy"] + scale, "numpy"
    )
    torch_python = find_torch_python()
    if torch_python:
        cmd = [torch_python, str(BENCH_PY), "--framework", "torch", f"--threads={args.torch_threads}"] + scale
        results["torch"] = _run_json_lines(cmd, "torch")
    else:
        notes.append(
            "PyTorch is not installed: `pip install torch` (or set TORCH_PYTHON) to fill its column."
        )
    for note in notes:
        print(note, file=sys.stderr)

    versions = []
    for col, name in COLUMNS[1:]:
        row = next(iter(results[col].values()), None)
        if row:
            threads = f" (threads={row['threads']})" if "threads" in row else ""
            versions.append(f"{name} {row.get('version', '?')}{threads}")
    table = build_table(results)
    print("\n".join(table))
    for note in notes:
        print(note)

    if args.no_write:
        return
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    legend = "\n".join(f"- `{key}`: {desc} ({unit})" for key, desc, unit in WORKLOADS)
    text = f"""# Benchmark results

Generated by `python benchmarks/run.py` on {now}.

Machine: {machine_info()}.
Versions: {"; ".join(versions) or "-"}.

Cells are medians, ± the interquartile range as a percent of the median; lower is better.
`rustgrad/PyTorch` is rustgrad-through-Python's median over PyTorch's (below 1 means rustgrad is faster).
numpy runs only `tanh_sum_1e6`, with a hand-written backward.

{chr(10).join(table)}

{legend}
{"".join(chr(10) + "Note: " + n for n in notes)}
"""
    (HERE / "RESULTS.md").write_text(text)
    print(f"\nwrote {HERE / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
