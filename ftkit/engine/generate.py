"""Decoding: one chat answer, greedy answers to many prompts in batches, and the plumbing both share —
length-sorted batches padded on the side a decoder needs (``sorted_batches``), ``new_tokens`` for any model
(a peft prefix-tuning one included), and greedy decoding without a KV cache (``greedy_ids``, the slow
reference that the cached path is tested against)."""
from __future__ import annotations

import copy

import torch

from ..platform.errors import FtkitError
from ..platform.runtime import autocast
from .losses import lm_keeping_logits


def sorted_batches(tokenizer, ids: list[list[int]], batch_size: int, side: str):
    """Token id lists in batches of similar length (least padding), padded on ``side`` ("left" for
    ``generate``, "right" for plain forward passes); yields (row indices, batch). The tokenizer is left as it
    was (the side is passed to ``pad``, not set on the tokenizer)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        yield rows, tokenizer.pad({"input_ids": [ids[i] for i in rows]}, padding_side=side, return_tensors="pt")


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


def last_logits(model, batch):
    """Each row's logits at its last real token (right padding); a soft prompt's extra front positions allowed.
    Only those positions go through the output layer (counted from the end: see ``losses.label_loss``)."""
    length = batch["input_ids"].shape[1]
    last = batch["attention_mask"].sum(1) - 1
    if lm_keeping_logits(model) is None:
        logits = model(**batch).logits
        return logits[torch.arange(len(last)), last + logits.shape[1] - length]
    keep, row_pos = torch.unique(last, return_inverse=True)  # a length-sorted batch shares a few last positions
    logits = model(**batch, logits_to_keep=keep - length).logits
    return logits[torch.arange(len(last)), row_pos]


def greedy_ids(model, tokenizer, batch, max_new_tokens: int) -> list[list[int]]:
    """Greedy decoding by plain forward passes (no KV cache) on a right-padded batch: each row's next token
    read at its last token, until every row has ended."""
    seqs = [ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]
    new = [[] for _ in seqs]
    for _ in range(max_new_tokens):
        padded = tokenizer.pad({"input_ids": [s + n for s, n in zip(seqs, new)]}, padding_side="right",
                               return_tensors="pt").to(batch["input_ids"].device)
        for row, token in enumerate(last_logits(model, padded).argmax(-1).tolist()):
            if not new[row] or new[row][-1] != tokenizer.eos_token_id:
                new[row].append(token)
        if all(n[-1] == tokenizer.eos_token_id for n in new):
            break
    return new


@torch.inference_mode()
def decode(model, tokenizer, ids: list[list[int]], *, device, max_new_tokens: int, batch_size: int = 16,
           bf16: bool = True, cache: bool = True, **options) -> list[str]:
    """Greedy continuations of prompts given as token ids, stripped, in the given order. ``cache=False``
    decodes with ``greedy_ids`` (no KV cache, right padding, as in training); ``options`` go to ``generate``
    (e.g. ``repetition_penalty``)."""
    model.to(device).eval()
    out = [""] * len(ids)
    for rows, batch in sorted_batches(tokenizer, ids, batch_size, side="left" if cache else "right"):
        batch = batch.to(device)
        with autocast(device, bf16):
            new = (new_tokens(model, batch, max_new_tokens=max_new_tokens, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id, **options)
                   if cache else greedy_ids(model, tokenizer, batch, max_new_tokens))
        for i, text in zip(rows, tokenizer.batch_decode(new, skip_special_tokens=True)):
            out[i] = text.strip()
    return out


def greedy(model, tokenizer, prompts: list[str], *, device, max_new_tokens: int = 48, batch_size: int = 16,
           bf16: bool = True, **options) -> list[str]:
    """The greedy continuation of each ready-made prompt string, stripped, in the given order (``decode``)."""
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    return decode(model, tokenizer, ids, device=device, max_new_tokens=max_new_tokens, batch_size=batch_size,
                  bf16=bf16, **options)


# For a tokenizer without a chat template (a base model such as GPT-2): each turn as '<|role|>', a newline,
# the text and the end-of-sequence token, and '<|assistant|>' to start the answer. The end-of-sequence token
# closes a turn, so a model tuned on it learns to stop. Instruct models keep their own template.
FALLBACK_CHAT_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token + '\n' }}"
                          "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def chat_template(tokenizer) -> str:
    """The tokenizer's own chat template, or ``FALLBACK_CHAT_TEMPLATE`` when it has none (and an EOS token)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    if tokenizer.eos_token is None:
        raise FtkitError(f"tokenizer {type(tokenizer).__name__} has neither a chat template nor an end-of-sequence "
                         "token to end a turn with: use a chat model such as 'smollm2-135m-instruct'")
    return FALLBACK_CHAT_TEMPLATE


def with_chat_template(tokenizer):
    """``tokenizer`` itself when it has a chat template, else a copy of it with ``FALLBACK_CHAT_TEMPLATE`` (the
    caller's tokenizer stays as it was): for code that reads ``tokenizer.chat_template`` itself (trl, a saved
    folder)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer
    fallback = copy.deepcopy(tokenizer)
    fallback.chat_template = chat_template(tokenizer)
    return fallback


def apply_chat(tokenizer, messages: list[dict], **options):
    """``tokenizer.apply_chat_template`` with ``chat_template``'s template (the fallback where it has none)."""
    return tokenizer.apply_chat_template(messages, chat_template=chat_template(tokenizer), **options)


@torch.inference_mode()
def chat(model, tokenizer, prompt: str, *, max_new_tokens: int = 48, system: str | None = None) -> str:
    """Greedy answer of a chat model to one user message (deterministic, so tests can compare it)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    inputs = apply_chat(tokenizer, messages, add_generation_prompt=True, return_tensors="pt",
                        return_dict=True).to(model.device)
    out = new_tokens(model, inputs, max_new_tokens=max_new_tokens, do_sample=False,
                     pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0], skip_special_tokens=True).strip()
