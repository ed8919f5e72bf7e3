"""What the digits examples share besides their PyTorch code: the loss-curve plot, the metrics file,
and running the same script on the other backend in a child process to compare time per epoch."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_losses(torch: Any, losses: list[float], title: str, path: Path) -> None:
    """The per-epoch training loss on a log scale (matplotlib takes the tensor as it is)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(range(1, len(losses) + 1), torch.tensor(losses), marker="o", markersize=3)
    ax.set(xlabel="epoch", ylabel="train cross-entropy", yscale="log", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_metrics(args: argparse.Namespace, path: Path, losses: list[float], seconds: list[float], **extra: Any) -> dict:
    """Saves (and returns) the run's metrics. The first epoch pays for warm-up (allocations, lazy
    imports) and is left out when there are more; the median, not the mean, so that a burst of load
    from another process does not skew it."""
    timed = sorted(seconds[1:] if len(seconds) > 1 else seconds)
    metrics = {
        "backend": args.backend,
        "epochs": args.epochs,
        "final_loss": losses[-1],
        "s_per_epoch": timed[len(timed) // 2],
        **extra,
    }
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def run_other(script: str, backend: str, args: argparse.Namespace, metrics_path: Path) -> dict | str:
    """Runs ``script`` with ``--backend backend`` in a child process: its metrics, or why there are none."""
    if importlib.util.find_spec(backend) is None:
        return "not installed"
    cmd = [sys.executable, script, "--backend", backend, "--no-compare", "--out", str(args.out)]
    cmd += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    cmd += ["--lr", str(args.lr), "--seed", str(args.seed)]
    child = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)  # its tqdm bar shows on stderr
    lines = child.stdout.splitlines()
    if child.returncode != 0:
        print("\n".join(lines), end="\n" if lines else "")
        return f"failed (exit status {child.returncode}, see its traceback)"
    print("\n".join(lines[:-1]), end="\n" if lines[:-1] else "")  # all but its own closing line
    return json.loads(metrics_path.read_text())


def compare(script: str, args: argparse.Namespace, mine: dict, metrics_name: str) -> dict[str, dict | str]:
    """Runs the other backend (unless ``--no-compare``) and prints the closing line
    ``rustgrad 0.012 s/epoch | torch 0.020 s/epoch (0.60x)``, the ratio being rustgrad / torch.
    Exits with an error if a run failed."""
    results: dict[str, dict | str] = {args.backend: mine}
    other = "torch" if args.backend == "rustgrad" else "rustgrad"
    path = args.out / metrics_name.format(backend=other)
    results[other] = run_other(script, other, args, path) if args.compare else "not run (--no-compare)"
    rg, pt = results["rustgrad"], results["torch"]
    parts = [
        f"{name} {r['s_per_epoch']:.3f} s/epoch" if isinstance(r, dict) else f"{name} {r}"
        for name, r in (("rustgrad", rg), ("torch", pt))
    ]
    if isinstance(rg, dict) and isinstance(pt, dict):
        parts[-1] += f" ({rg['s_per_epoch'] / pt['s_per_epoch']:.2f}x)"
    print(" | ".join(parts))
    if any(isinstance(r, str) and r.startswith("failed") for r in results.values()):
        sys.exit(1)
    return results
