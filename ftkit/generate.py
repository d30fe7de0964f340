"""Greedy text generation: one chat answer, or many prompts in batches; ``new_tokens`` generates for any model,
a peft prefix-tuning one included."""
from __future__ import annotations

import torch

from .runtime import autocast


def new_tokens(model, batch, **options):
    """The tokens ``model.generate(**batch, **options)`` adds after each row of a left-padded ``batch``.

    A peft prefix-tuning model's own ``generate`` drops its prefix (peft 0.21 with transformers 5.24: its first
    logits are the base model's; notebook 05 shows it). Its base model generates here instead, from the prefix
    as a ready-made KV cache: placeholder ids that the cache covers and a mask of ones go in front, and
    ``generate`` counts positions from the mask, so the prompt follows the virtual tokens as in training
    whatever the padding. (Written here because peft's own path for this is the one that fails.)
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    config = getattr(model, "active_peft_config", None)
    if getattr(config, "peft_type", None) == "PREFIX_TUNING":
        rows, n = ids.shape[0], config.num_virtual_tokens
        prefix = model.get_prompt(rows, max_cache_len=n + ids.shape[1] + options.get("max_new_tokens", 0))
        ids, mask = torch.cat([ids.new_zeros((rows, n)), ids], 1), torch.cat([mask.new_ones((rows, n)), mask], 1)
        model, options = model.get_base_model(), {**options, "cache": prefix}
    return model.generate(input_ids=ids, attention_mask=mask, **options)[:, ids.shape[1]:]


@torch.inference_mode()
def chat(model, tokenizer, prompt: str, *, max_new_tokens: int = 48, system: str | None = None) -> str:
    """Greedy answer of a chat model to one user message (deterministic, so tests can compare it)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    out = new_tokens(model, inputs, max_new_tokens=max_new_tokens, do_sample=False,
                     pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0], skip_special_tokens=True).strip()


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
                new = new_tokens(model, batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, **options)
            for i, text in zip(rows, tokenizer.batch_decode(new, skip_special_tokens=True)):
                out[i] = text.strip()
    finally:
        tokenizer.padding_side = side
    return out
