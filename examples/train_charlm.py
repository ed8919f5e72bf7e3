"""A character-level transformer language model trained on Python's own standard library source,
as a plain PyTorch program.

    python examples/train_charlm.py                   # rustgrad
    python examples/train_charlm.py --backend torch   # the same code on PyTorch

``--backend rustgrad`` (the default) does ``import rustgrad as torch``. The model is a small GPT:
token and position embeddings, ``--layers`` blocks of causal self-attention
(``F.scaled_dot_product_attention(..., is_causal=True)``) and a GELU feed-forward, each behind a
``LayerNorm`` with a residual connection, and a linear head. It trains with AdamW on the text of a
few standard-library modules (found with ``inspect``, so nothing is downloaded), holding out the last
10% of the text for validation. Every ``--eval-every`` steps it prints the training and validation
loss per character (in nats and in bits); at the end it saves the weights, prints a sample of
``--sample-chars`` characters generated from a newline, and the median time per training step.
The script exits with an error if the final validation loss is not below ``--max-val-loss`` (when
at least 500 steps were run).
"""

from __future__ import annotations

import argparse
import inspect
import math
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["rustgrad", "torch"], default="rustgrad")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block", type=int, default=64, help="context length in characters")
    p.add_argument("--d-model", type=int, default=96)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--sample-chars", type=int, default=300)
    p.add_argument("--max-val-loss", type=float, default=2.3, help="nats per character")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    return p.parse_args(argv)


ARGS = parse_args()

if ARGS.backend == "torch":
    import torch
    import torch.nn.functional as F
    from torch import nn
else:
    import rustgrad as torch
    import rustgrad.nn.functional as F
    from rustgrad import nn


# ----- from here on, a plain PyTorch program -----


def load_text() -> str:
    """The source of a few standard-library modules: a few hundred kB of Python."""
    import argparse as m1
    import collections as m2
    import json.decoder as m3
    import textwrap as m4
    import typing as m5

    return "\n".join(inspect.getsource(m) for m in (m1, m2, m3, m4, m5))


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.dropout(self.proj(y))


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads, dropout)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model), nn.Dropout(dropout)
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self, vocab: int, block: int, d_model: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.block = block
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(block, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(d_model, heads, dropout) for _ in range(layers)])
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, idx, targets=None):
        t = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos(torch.arange(t)))
        logits = self.head(self.ln(self.blocks(x)))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    @torch.no_grad()
    def generate(self, idx, n: int):
        for _ in range(n):
            logits, _ = self(idx[:, -self.block :])
            probs = F.softmax(logits[:, -1, :], dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, num_samples=1)], dim=1)
        return idx


def batches(data, block: int, batch_size: int):
    starts = torch.randint(len(data) - block - 1, (batch_size,))
    x = torch.stack([data[i : i + block] for i in starts.tolist()])
    y = torch.stack([data[i + 1 : i + block + 1] for i in starts.tolist()])
    return x, y


@torch.no_grad()
def estimate(model, data, args, n_batches: int = 10) -> float:
    model.eval()
    losses = [model(*batches(data, args.block, args.batch_size))[1].item() for _ in range(n_batches)]
    model.train()
    return sum(losses) / len(losses)


def main(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    text = load_text()
    chars = sorted(set(text))
    index = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    print(f"{args.backend}: {len(text):,} characters of stdlib source, vocabulary {len(chars)}")

    model = CharGPT(len(chars), args.block, args.d_model, args.heads, args.layers, args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.layers} blocks, d_model {args.d_model}, {args.heads} heads, {n_params:,} parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)

    step_seconds = []
    val = float("nan")
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        x, y = batches(train_data, args.block, args.batch_size)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step_seconds.append(time.perf_counter() - start)
        if step % args.eval_every == 0 or step == args.steps:
            train = estimate(model, train_data, args)
            val = estimate(model, val_data, args)
            print(
                f"step {step:5d}: train {train:.3f} nats/char ({train / math.log(2):.2f} bits), "
                f"val {val:.3f} nats/char ({val / math.log(2):.2f} bits)"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / f"charlm_{args.backend}.pt"
    torch.save(model.state_dict(), ckpt)
    model.eval()
    start = torch.tensor([[index["\n"]]], dtype=torch.long)
    sample = "".join(chars[i] for i in model.generate(start, args.sample_chars)[0].tolist())
    print("--- sample ---")
    print(sample)
    print("--- end of sample ---")
    timed = sorted(step_seconds[1:] if len(step_seconds) > 1 else step_seconds)
    print(f"{args.backend}: final val loss {val:.3f} nats/char; {1e3 * timed[len(timed) // 2]:.1f} ms/step; "
          f"checkpoint {ckpt}")
    if args.steps >= 500 and not val < args.max_val_loss:
        raise SystemExit(f"validation loss {val:.3f} is not below {args.max_val_loss}")


if __name__ == "__main__":
    main(ARGS)
