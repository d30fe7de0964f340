"""Text generation with a chat model's own template."""
from __future__ import annotations

import torch


@torch.inference_mode()
def chat(model, tokenizer, prompt: str, *, max_new_tokens: int = 48, system: str | None = None) -> str:
    """Greedy answer of a chat model to one user message (deterministic, so tests can compare it)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
