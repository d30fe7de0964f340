"""A tuned model made standalone: a LoRA adapter folded into its base weights, saved as a folder that plain
transformers loads, and the proof, an answer from a fresh process that imports nothing of ftkit (notebook 12).

    folder_files = export.save_standalone(merged, tok, "my-chat-model")   # merged: loads without peft
    export.answer_in_fresh_process("my-chat-model", "What is the capital of France?")
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from ..engine import generate
from ..platform.errors import FtkitError


def merged(model):
    """A copy of a LoRA model with the adapter folded into the base weights (``merge_and_unload``), leaving
    ``model`` and its adapter as they were; any other model is returned as it is."""
    return copy.deepcopy(model).merge_and_unload() if hasattr(model, "merge_and_unload") else model


def save_standalone(model, tokenizer, folder) -> list[str]:
    """Save a model that loads without peft: safetensors weights, config, generation config, tokenizer and
    chat template (the fallback one, ``generate.FALLBACK_CHAT_TEMPLATE``, for a tokenizer that had none, so the
    folder answers in the format it was tuned on); a LoRA model is merged first (on a copy). Returns the names
    of the files written."""
    folder = Path(folder)
    merged(model).save_pretrained(folder)  # safetensors by default in transformers 5
    generate.with_chat_template(tokenizer).save_pretrained(folder)
    return sorted(p.name for p in folder.iterdir())


_FRESH = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, prompt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
tok = AutoTokenizer.from_pretrained(folder)
ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                              return_tensors="pt", return_dict=True)
out = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
print(json.dumps(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()))
"""  # transformers alone, not ftkit.generate.chat: nothing of ours in that process (and 4 s less importing)


def answer_in_fresh_process(folder, prompt: str, max_new_tokens: int = 32) -> str:
    """The greedy fp32 answer of a saved model, loaded by plain transformers in a new Python process that
    imports nothing of ftkit: proof that the folder alone is the model (nothing borrowed from this kernel)."""
    done = subprocess.run([sys.executable, "-c", _FRESH, str(folder), prompt, str(max_new_tokens)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise FtkitError(f"the saved model in {folder} did not load in a fresh process: "
                         f"{done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
