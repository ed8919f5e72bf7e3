"""Command line: ``python -m tests.fuzz --programs N --seed S [--oracle-python PATH] [--jobs 2] [--out F]``.

Without an oracle (PyTorch not importable and no ``--oracle-python``) it runs CI mode: rustgrad
alone, reporting crashes, hangs, panics, non-standard exceptions and arguments changed by a
statement that raised. With one it also compares every outcome with PyTorch's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

from .generator import generate
from .runner import CI_CATEGORIES, Pool, default_python, format_report, fuzz


def find_oracle(explicit: str | None) -> str | None:
    """The interpreter to run PyTorch with: the one given, else this one if it has torch."""
    if explicit:
        return explicit
    return sys.executable if importlib.util.find_spec("torch") is not None else None


def main(argv: list | None = None) -> int:
    """Runs the fuzzer; returns the exit status (1 when CI-mode categories were found)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--programs", type=int, default=1000, help="number of programs")
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[0],
        help="run seed(s); programs are deterministic in (seed, index)",
    )
    parser.add_argument("--start", type=int, default=0, help="index of the first program")
    parser.add_argument(
        "--oracle-python", help="interpreter with PyTorch installed (default: this one, if it has it)"
    )
    parser.add_argument("--no-oracle", action="store_true", help="CI mode even if PyTorch is importable")
    parser.add_argument(
        "--rustgrad-python", default=default_python(), help="interpreter with rustgrad installed"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker sets run in parallel")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per program before it counts as a hang"
    )
    parser.add_argument("--no-shrink", action="store_true", help="report findings without shrinking them")
    parser.add_argument("--shrink-seconds", type=float, default=900.0, help="time budget for shrinking")
    parser.add_argument("--out", help="write the Markdown report here")
    parser.add_argument(
        "--import-line", default="import torch", help="first line of the rendered reproducers"
    )
    opts = parser.parse_args(argv)

    oracle = None if opts.no_oracle else find_oracle(opts.oracle_python)
    pool = Pool(opts.rustgrad_python, oracle, jobs=opts.jobs, timeout=opts.timeout)
    try:
        api = pool.start()
        programs = [
            (f"{seed}:{i}" if len(opts.seed) > 1 else i, generate(seed, i, api))
            for seed in opts.seed
            for i in range(opts.start, opts.start + opts.programs)
        ]
        started = time.monotonic()

        def progress(i: int, done=[0]) -> None:  # noqa: B006 - a counter shared by the calls
            done[0] += 1
            if done[0] % 250 == 0:
                print(
                    f"  {done[0]}/{len(programs)} programs, {time.monotonic() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

        report = fuzz(
            pool,
            programs,
            shrink_findings=not opts.no_shrink,
            shrink_seconds=opts.shrink_seconds,
            progress=progress,
        )
    finally:
        pool.close()
    text = format_report(report, import_line=opts.import_line)
    if opts.out:
        with open(opts.out, "w", encoding="utf-8") as f:
            f.write(text)
    mode = "oracle" if oracle else "CI"
    seeds = ", ".join(str(seed) for seed in opts.seed)
    print(f"{mode} mode: {report.programs} programs (seed {seeds}) in {report.seconds:.1f} s")
    for cat, n in sorted(report.counts.items(), key=lambda kv: -kv[1]):
        unique = sum(1 for f in report.reproducers if f.category == cat)
        print(f"  {cat:24s} {n:6d} programs {unique:4d} unique")
    if not report.counts:
        print("  no findings")
    if not opts.out:
        print(text)
    else:
        print(f"report written to {opts.out}")
    return 1 if report.failing(CI_CATEGORIES) else 0
