"""Where and how the code runs: device, bf16 support, seeds, peak memory (of the process, or of one block:
``PeakMemory``), library versions."""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import random
import resource
import threading

import numpy as np
import torch


def get_device(profile) -> torch.device:
    return torch.device(profile.device)


def bf16_supported(device) -> bool:
    """bf16 pays off on CUDA and on CPUs with bf16 matrix units (AMX or AVX512-BF16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:  # not Linux: stay in fp32
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


@contextlib.contextmanager
def autocast(device, enabled: bool = True):
    """bf16 autocast on the device when it helps (weights and optimizer state stay fp32); on CUDA without
    cuDNN's attention kernel (``no_cudnn_attention``)."""
    device = torch.device(device)
    if not (enabled and bf16_supported(device)):
        yield
        return
    with no_cudnn_attention(device), torch.autocast(device.type, dtype=torch.bfloat16):
        yield


def no_cudnn_attention(device="cuda"):
    """Inside the block, SDPA on CUDA picks flash, memory-efficient or math attention, not cuDNN's.

    In bf16 on an H200 (torch 2.11), SDPA picked cuDNN's kernel, and MiniLM, whose batches are padded to their
    own length (a new shape in most batches), trained 4.7x slower with it: 5,606 against 26,216 real tokens/s
    on 2,000 tweets; Trainer with bf16 likewise (7,620 against 25,467). Notebooks 01 and 11 wrap
    ``trainer.train()`` in it, and ``sft.SFTTrainer`` each training step. A no-op elsewhere."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on CPU (since it started:
    for one block of code, ``PeakMemory``)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def resident_mb() -> float | None:
    """The process's resident memory now (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """The peak memory of one block, so that two runs in one process (one notebook) can be compared:

        with runtime.PeakMemory(device) as peak:
            train.fit(...)
        peak.mb

    On CUDA torch's peak allocation, reset at the start. On a CPU the process's resident memory sampled every
    ``interval`` seconds by a background thread: the operating system's own peak (``ru_maxrss``) only grows
    over a process's life, and a training step holds its activations far longer than a few milliseconds.
    Without /proc (not Linux) it falls back to that process peak."""

    def __init__(self, device="cpu", interval: float = 0.005):
        self.device, self.interval, self.mb = torch.device(device), interval, None
        self._stop, self._thread = threading.Event(), None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif resident_mb() is not None:
            self.mb = resident_mb()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.mb = max(self.mb, resident_mb() or 0.0)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.mb = max(self.mb, resident_mb() or 0.0)
        else:
            self.mb = peak_memory_mb(self.device)
        return False


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"


def versions() -> dict:
    names = ("ftkit", "torch", "transformers", "peft", "datasets", "evaluate", "accelerate")
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


@contextlib.contextmanager
def bf16_frozen_weights(model, device, enabled: bool = True):
    """Inside the block, the frozen weight matrices of ``model``'s linear layers are bf16 (where bf16 autocast
    runs): autocast would cast them at every forward pass, the same values each time. Trainable weights,
    embeddings and any weight tied to them stay fp32. The fp32 originals come back on leaving, untouched.

    autocast keeps such a cache only for weights that train; for frozen ones (LoRA, prompt tuning) no
    library does this, so it is written here.
    """
    if not (enabled and bf16_supported(device)):
        yield
        return
    embeddings = {p.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    kept = [(m.weight, m.weight.data) for m in model.modules()
            if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad and m.weight.dtype == torch.float32
            and m.weight.data_ptr() not in embeddings]
    for weight, data in kept:
        weight.data = data.to(torch.bfloat16)
    try:
        yield
    finally:
        for weight, data in kept:
            weight.data = data
