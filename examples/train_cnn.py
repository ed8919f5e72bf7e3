"""The second main job: a small CNN (convolutions, batch norm, max pooling, dropout) classifying
scikit-learn's 8x8 handwritten digits, as a plain PyTorch program.

    python examples/train_cnn.py                   # rustgrad, then the same run on PyTorch if installed
    python examples/train_cnn.py --backend torch   # the same code on PyTorch
    python examples/train_cnn.py --no-compare      # one backend only

``--backend rustgrad`` (the default) does ``import rustgrad as torch``; ``--backend torch`` imports
PyTorch: the training code below is the same for both. It trains ``DigitsCNN`` with Adam and a StepLR
schedule on a fixed stratified split (1347 train / 450 test images, each a 1x8x8 image), prints the
test accuracy, saves the weights with ``torch.save(model.state_dict(), ...)`` (batch norm's running
statistics included), reloads them into a fresh model to check it scores the same, and draws the loss
curve. Files go to ``--out`` (default ``examples/out/``): ``cnn_<backend>.pt``, ``cnn_loss_<backend>.png``,
``cnn_metrics_<backend>.json``.

Unless ``--no-compare`` is given, the same run is then repeated on the other backend in a child
process (when it is installed) and the last line compares the median time per training epoch (the
first, warm-up epoch left out), the ratio being rustgrad's over PyTorch's:
``rustgrad 0.012 s/epoch | torch 0.020 s/epoch (0.60x)`` or ``rustgrad 0.012 s/epoch | torch not installed``.
The script exits with an error if either run fails, or if a run of 20 epochs or more ends below 98%
test accuracy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from backends import compare, plot_losses, write_metrics
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["rustgrad", "torch"], default="rustgrad")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    p.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the other backend (when PyTorch is installed) and compare s/epoch (default: on)",
    )
    return p.parse_args(argv)


ARGS = parse_args()

if ARGS.backend == "torch":
    import torch
    from torch import nn, optim
else:
    import rustgrad as torch
    from rustgrad import nn, optim


# ----- from here on, a plain PyTorch program -----


class DigitsCNN(nn.Module):
    def __init__(self, p_drop: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.dropout = nn.Dropout(p_drop)
        self.classifier = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(self.dropout(x))


def load_data():
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )

    def to_x(a):
        return torch.tensor(a / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)  # pixels are 0..16

    def to_y(a):
        return torch.tensor(a, dtype=torch.int64)

    return to_x(x_train), to_y(y_train), to_x(x_test), to_y(y_test)


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_data()
    model = DigitsCNN()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)

    n = x_train.shape[0]
    epoch_losses = []
    epoch_seconds = []
    bar = tqdm(range(args.epochs), desc=f"{args.backend} training", unit="epoch")
    for _ in bar:
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        epoch_seconds.append(time.perf_counter() - start)
        epoch_losses.append(total / n)
        bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")

    test_acc = accuracy(model, x_test, y_test)

    # Checkpoint: save the weights, reload them into a fresh model, check it scores the same.
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / f"cnn_{args.backend}.pt"
    torch.save(model.state_dict(), ckpt)
    fresh = DigitsCNN()
    fresh.load_state_dict(torch.load(ckpt))
    reloaded_acc = accuracy(fresh, x_test, y_test)
    assert reloaded_acc == test_acc, f"reloaded model scores {reloaded_acc}, trained one {test_acc}"

    plot_losses(torch, epoch_losses, f"digits CNN ({args.backend})", args.out / f"cnn_loss_{args.backend}.png")
    metrics = write_metrics(
        args, args.out / f"cnn_metrics_{args.backend}.json", epoch_losses, epoch_seconds, test_accuracy=test_acc, checkpoint=str(ckpt)
    )
    print(
        f"{args.backend}: test accuracy {100 * test_acc:.2f}% ({len(y_test)} images), "
        f"final train loss {epoch_losses[-1]:.4f}; checkpoint {ckpt} reloads to the same accuracy"
    )
    return metrics


# ----- comparison between the two backends -----


def main() -> None:
    mine = train(ARGS)
    acc = mine["test_accuracy"]
    assert acc >= 0.98 or ARGS.epochs < 20, f"test accuracy {acc:.3f} is below 98%"
    compare(__file__, ARGS, mine, "cnn_metrics_{backend}.json")


if __name__ == "__main__":
    main()
