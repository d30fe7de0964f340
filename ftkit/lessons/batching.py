"""Gradient accumulation done exactly, and what a batch size costs in memory and time (notebook 10).

Accumulating k micro-batches must give the gradient of the one big batch. Averaging the k micro-batch
losses (``loss / k``) gets it right only when every micro-batch counts the same: it is wrong when the last
micro-batch is smaller, and for a causal LM, whose loss is a mean over tokens, whenever micro-batches hold
different numbers of tokens. The right weight of a micro-batch is its share of the big batch's examples
(classification) or of its label tokens (causal LM); transformers' Trainer does the same with
``num_items_in_batch``. These helpers show and test that; ``train.fit(accumulate=k)`` weights its
micro-batches the same way, through ``losses.items``.
"""
from __future__ import annotations

import time

import torch

from ..engine import train
from ..engine.losses import items
from ..platform import checkpoint
from ..platform.errors import FtkitError
from ..platform.runtime import autocast


def accumulation_steps(effective_batch: int, micro_batch: int) -> int:
    """How many micro-batches make one effective batch; a one-line error when they do not divide."""
    if effective_batch % micro_batch:
        raise FtkitError(f"effective_batch {effective_batch} is not a multiple of micro_batch {micro_batch}: "
                         f"e.g. -p effective_batch {micro_batch * max(1, effective_batch // micro_batch)}")
    return effective_batch // micro_batch


def micro_batches(rows, sizes: list[int], collate) -> list[dict]:
    """Consecutive micro-batches of the given sizes from a list (or dataset) of examples, each collated."""
    out, start = [], 0
    for n in sizes:
        out.append(collate([rows[i] for i in range(start, start + n)]))
        start += n
    return out


def gradients(model) -> dict:
    """A copy of every trainable parameter's gradient."""
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def accumulated_gradients(model, micro_batches: list[dict], weighting: str = "exact", unit: str = "examples") -> dict:
    """The gradient after backward on each micro-batch in turn, the losses weighted by
    ``"exact"``: n_i / N (n_i examples or label tokens of N in all), or ``"naive"``: 1 / k."""
    model.zero_grad(set_to_none=True)
    counts = [items(b, unit) for b in micro_batches]
    for batch, n in zip(micro_batches, counts):
        loss = model(**batch).loss
        weight = n / sum(counts) if weighting == "exact" else 1 / len(micro_batches)
        (loss * weight).backward()
    grads = gradients(model)
    model.zero_grad(set_to_none=True)
    return grads


def max_abs_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two gradients (the same parameters)."""
    return max((a[n] - b[n]).abs().max().item() for n in a)


def activation_mb(model, batch: dict, bf16: bool = False) -> float:
    """Megabytes the forward pass keeps for the backward pass (activations; the weights it saves are not
    counted). On a CPU, where torch reports no peak, this is the part of memory that grows with the batch."""
    weights = {p.data_ptr() for p in model.parameters()}
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key[0] not in weights and key not in seen:
            seen.add(key)
            total += key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast(next(model.parameters()).device, bf16):
        model(**batch).loss
    return total / 2**20


def step_seconds(model, micro_batches: list[dict], optimizer, steps: int = 3, bf16: bool = True) -> dict:
    """Median seconds of a training step (forward and backward on each micro-batch, one optimizer step),
    after a warm-up step; on CUDA also the peak memory allocated (MB)."""
    device = next(model.parameters()).device
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for batch in micro_batches:
            with autocast(device, bf16):
                loss = model(**batch).loss
            (loss / len(micro_batches)).backward()  # equal micro-batches here: 1/k is their exact weight
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"seconds": sorted(times)[len(times) // 2], "peak_mb": peak}


def fit_in_memory(model, tokenizer, train_ds, *, effective_batch: int, micro_batch: int | None = None, **fit_args):
    """``train.fit`` with the largest micro-batch that fits in memory; returns (micro-batch, history).

    Starts at ``micro_batch`` (default: the whole effective batch). On an out-of-memory error it puts the
    starting weights and random states back, halves the micro-batch (to a divisor of ``effective_batch``) and
    raises the gradient accumulation to match, so the optimizer still sees batches of ``effective_batch``.
    accelerate's ``find_executable_batch_size`` does the catching and retrying; only the halving rule is ours.
    """
    from accelerate.utils import find_executable_batch_size

    size = micro_batch or effective_batch
    accumulation_steps(effective_batch, size)  # they must divide
    start = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    rng = checkpoint.rng_state()  # each attempt starts like the first: same weights, same random draws

    def smaller():
        nonlocal size
        size = next((d for d in range(size // 2, 0, -1) if effective_batch % d == 0), 0)
        if size:
            print(f"out of memory: retrying with micro-batches of {size} x {effective_batch // size}")
        return size

    @find_executable_batch_size(starting_batch_size=size, reduce_batch_size_fn=smaller)
    def attempt(batch_size):
        model.load_state_dict(start)
        checkpoint.set_rng_state(rng)
        return batch_size, train.fit(model, tokenizer, train_ds, batch_size=batch_size,
                                     accumulate=effective_batch // batch_size, **fit_args)
    try:
        return attempt()
    except RuntimeError as e:
        if "No executable batch size found" not in str(e):
            raise
        raise FtkitError("even a micro-batch of 1 does not fit in memory: lower max_length, or train fewer "
                         "weights (LoRA), or use a smaller model") from None
