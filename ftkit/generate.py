"""Greedy text generation: one chat answer, or many prompts in batches."""
from __future__ import annotations

import torch

from .runtime import autocast


@torch.inference_mode()
def chat(model, tokenizer, prompt: str, *, max_new_tokens: int = 48, system: str | None = None) -> str:
    """Greedy answer of a chat model to one user message (deterministic, so tests can compare it)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@torch.inference_mode()
def greedy(model, tokenizer, prompts: list[str], *, device, max_new_tokens: int = 48, batch_size: int = 16,
           bf16: bool = True, **options) -> list[str]:
    """The greedy continuation of each ready-made prompt string, stripped, in the given order. Prompts go in
    batches of similar length padded on the left (where ``generate`` expects padding); ``options`` go to
    ``generate`` (e.g. ``repetition_penalty``)."""
    model.to(device).eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = [""] * len(prompts)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([prompts[i] for i in rows], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(device)
            with autocast(device, bf16):
                new = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, **options)
            for i, text in zip(rows, tokenizer.batch_decode(new[:, batch["input_ids"].shape[1]:],
                                                            skip_special_tokens=True)):
                out[i] = text.strip()
    finally:
        tokenizer.padding_side = side
    return out
