"""Smoke tests of the runnable examples: they run to the end and write what they promise."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# e.g. "rustgrad 0.012 s/epoch | torch 0.020 s/epoch (0.60x)" or "rustgrad 0.012 s/epoch | torch not installed"
CLOSING_LINE = re.compile(
    r"rustgrad \d+\.\d{3} s/epoch \| torch (not installed|\d+\.\d{3} s/epoch \(\d+\.\d{2}x\))"
)


def test_train_digits_smoke(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_digits.py"), "--epochs", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert CLOSING_LINE.fullmatch(lines[-1]), lines[-1]
    assert any(re.match(r"rustgrad: test accuracy \d+\.\d\d% \(450 images\)", line) for line in lines), (
        proc.stdout
    )
    assert "rustgrad training" in proc.stderr  # the tqdm bar

    metrics = json.loads((out / "metrics_rustgrad.json").read_text())
    assert metrics["epochs"] == 2 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert (out / "loss_rustgrad.png").read_bytes().startswith(b"\x89PNG")

    import rustgrad as torch

    state = torch.load(out / "mlp_rustgrad.pt")
    assert {name: tuple(t.shape) for name, t in state.items()} == {
        "fc1.weight": (128, 64),
        "fc1.bias": (128,),
        "fc2.weight": (10, 128),
        "fc2.bias": (10,),
    }


def test_linear_regression_runs():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "linear_regression.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validation mse" in proc.stdout


def test_train_cnn_smoke(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("tqdm")
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_cnn.py"), "--epochs", "2", "--out", str(out), "--no-compare"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("rustgrad ") and "s/epoch | torch not run (--no-compare)" in lines[-1]
    match = re.search(r"rustgrad: test accuracy (\d+\.\d\d)% \(450 images\)", proc.stdout)
    assert match and float(match.group(1)) > 80.0, proc.stdout  # two epochs already learn the digits
    assert (out / "cnn_loss_rustgrad.png").read_bytes().startswith(b"\x89PNG")

    import rustgrad as torch

    state = torch.load(out / "cnn_rustgrad.pt")
    assert tuple(state["features.0.weight"].shape) == (16, 1, 3, 3)
    assert "features.1.running_mean" in state and int(state["features.1.num_batches_tracked"]) > 0


def test_train_charlm_smoke(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_charlm.py"), "--steps", "30", "--eval-every", "15",
         "--sample-chars", "40", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    losses = [float(v) for v in re.findall(r"val (\d+\.\d+) nats/char", proc.stdout)]
    assert len(losses) == 2 and losses[-1] < 4.0, proc.stdout  # below log(vocabulary) after 30 steps
    assert "--- sample ---" in proc.stdout and (tmp_path / "charlm_rustgrad.pt").exists()
