"""The on-disk cache of converted models (``FTKIT_CACHE``, default ``~/.cache/ftkit``).

SmolLM2 ships as a quantized GGUF file. transformers can read it (``gguf_file=``), but the result is
flagged as quantized and refuses ``save_pretrained``, and reading it takes ~10 s. So we convert it once:
build a fresh model from its config (without the quantization config), load the de-quantized weights,
and save a safetensors checkpoint with the tokenizer. Later loads take under a second.

Two notebooks may start at the same moment: the conversion runs under a file lock and writes into a
temporary folder that is renamed into place, so a reader never sees a half-written checkpoint. The fresh
model's random initialisation draws from a forked torch generator: a run that converts gives the same
numbers for its seed as a run that finds the checkpoint already there.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from filelock import FileLock

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def root() -> Path:
    return Path(os.environ.get("FTKIT_CACHE", Path.home() / ".cache" / "ftkit"))


def smollm2_dir(package: Path) -> Path:
    """Folder with the safetensors checkpoint and tokenizer of SmolLM2-135M-Instruct, made on first use."""
    target = root() / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "model.safetensors").exists():  # another process may have finished meanwhile
            tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
            try:
                with torch.random.fork_rng(devices=[]):  # the caller's random stream is not drawn from
                    _convert_gguf(package, GGUF_FILE, tmp)
                for f in [tmp, *tmp.iterdir()]:  # mkdtemp and save_pretrained make them private
                    f.chmod(0o755 if f.is_dir() else 0o644)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(folder: Path, gguf_file: str, out: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    print(f"ftkit: converting {gguf_file} to safetensors in {root()} (once, ~15 s)")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(out)
    tok.save_pretrained(out)


def parquet(name: str, build):
    """A DataFrame built once by ``build()`` and kept as parquet in the cache (atomic write)."""
    import pandas as pd

    path = root() / "data" / f"{name}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    df = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return df
