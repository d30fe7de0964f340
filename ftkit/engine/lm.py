"""A classification task taught to a causal LM: the text goes into a prompt, the label comes out as a word.

    encoded = lm.encode(ds["train"], tok, instruction, label_words)   # prompt masked out of the loss
    train.fit(model, tok, lm.loader(encoded, tok, batch_size=16, pack=True), ...)  # shuffled, packed rows
    answers = lm.generate_labels(model, tok, ds["test"], instruction, device=device)
    lm.label_metrics(answers, ds["test"]["label"], label_words)      # an answer off the format is wrong

``verbalizer_logits`` reads a label without generating: the next-token scores of each label word's first
token after the prompt (the verbalizer of Schick & Schütze 2021).

transformers has the pieces (chat templates, ``DataCollatorForSeq2Seq`` pads labels with -100, batched
``generate``); what no library offers is the glue between a labelled dataset and them, which is this file.
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorForSeq2Seq

from . import data, generate, losses, train
from ..platform.errors import FtkitError
from .metrics import classification_metrics
from .packing import PackedCollator
from ..platform.runtime import autocast


# Training messages per profile for the prompt methods (05-07), which train at batch 8: on cpu the same 40
# steps as 320 messages at batch 16, at half the tokens. Other notebooks take load_task's default.
PROMPT_TRAIN = {"smoke": 32, "cpu": 160, "gpu": 2000}


def load_task(dataset: str, profile, max_train: int | None = None, max_eval: int | None = None):
    """(dataset, label words, instruction) for a labelled dataset, sized for a causal LM on the profile.

    The training examples are class-balanced (as far as the data allows): with few steps and a rare class
    (13% of SMS are spam), a small set of new parameters first learns to always answer the common label.
    Validation and test keep the real class mix.
    """
    max_train = max_train or profile.pick(smoke=32, cpu=320, gpu=2000)
    ds = data.load_dataset(dataset, profile=profile, max_train=10**9,
                           max_eval=max_eval or profile.pick(smoke=16, cpu=200, gpu=1000))
    if "label" not in ds["train"].column_names:
        raise FtkitError(f"dataset {dataset!r} has no labels: this task needs text,label data such as 'sms-spam'")
    ds["train"] = balanced(ds["train"], max_train)
    words = ds["train"].features["label"].names
    return ds, words, instruction(words)


def balanced(ds, n: int, seed: int = 0):
    """``n`` examples taken from each class in turn (in a fixed random order), kept in dataset order."""
    labels = np.asarray(ds["label"])
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    turns = [i for turn in itertools.zip_longest(*groups) for i in turn if i is not None]
    return ds.select(sorted(turns[:n]))


def instruction(label_words) -> str:
    """A task description that names the labels, for any labelled dataset."""
    return f"Label the message as one of: {', '.join(label_words)}. Answer with the label only."


def prompt(tokenizer, instruction: str, text: str) -> str:
    """The prompt for one example: the model's chat template when it has one, else plain text."""
    if getattr(tokenizer, "chat_template", None):  # the instruction as the system message: a short prompt
        return tokenizer.apply_chat_template([{"role": "system", "content": instruction},
                                              {"role": "user", "content": text}],
                                             add_generation_prompt=True, tokenize=False)
    return f"{instruction}\n\n{text}\nAnswer: "


def _prompt_ids(tokenizer, instruction, text, max_length):
    words = tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]  # cut the text, keep the rest
    return tokenizer(prompt(tokenizer, instruction, tokenizer.decode(words)), add_special_tokens=False)["input_ids"]


def _all_prompt_ids(tokenizer, instruction, ds, max_length) -> list[list[int]]:
    return [_prompt_ids(tokenizer, instruction, t, max_length) for t in ds["text"]]


def encode(ds, tokenizer, instruction: str, label_words, max_length: int = 96):
    """Prompt + label word + end-of-sequence, with labels -100 on the prompt: the loss is on the answer only.
    ``max_length`` caps each example's text (in tokens), not the instruction."""
    label_words = list(label_words)

    def one(example):
        p = _prompt_ids(tokenizer, instruction, example["text"], max_length)
        a = tokenizer(label_words[example["label"]] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        return {"input_ids": p + a, "attention_mask": [1] * (len(p) + len(a)), "labels": [-100] * len(p) + a}
    return data.map_rows(ds, one, remove_columns=ds.column_names)


def loader(encoded, tokenizer, batch_size: int, shuffle: bool = True, seed: int = 0, pack: bool = False,
           by_length: bool | None = None) -> DataLoader:
    """Training batches with labels padded by -100. ``pack``: batches of a plain shuffle, each one's examples
    packed into rows of 256 tokens (``packing.PackedCollator``); the way to train a model that takes packed rows
    (not soft prompts or prefixes, which packing would share between a row's examples). Unpacked:
    ``train.loader``'s length-grouped batches. ``by_length`` overrides either choice.

    Here transformers' ``LengthGroupedSampler``, not ``buckets.LengthBuckets``: in prompts, length often
    gives the label away (SMS spam is long), so sorted buckets make one-class batches in random order, and
    notebook 17's full fine-tuning of SmolLM2 then learnt nothing (task gain -0.07 against 0.80); Trainer's
    sampler alternates long and short batches. Its batches still lean to one class, which costs accuracy on
    more data: SmolLM2 LoRA on 1,280 SMS prompts (one epoch, seeds 0 and 1, bf16 CPU) reached 0.89 and 0.91
    test accuracy with it, 0.945 and 0.975 with a plain shuffle (41% padding, 1.44 to 1.51x slower), 0.96 and
    0.975 shuffled and packed (13 to 14% padding, 0.83 to 0.87x the grouped speed): hence packed batches are
    shuffled."""
    by_length = not pack if by_length is None else by_length
    collate = PackedCollator(tokenizer) if pack else DataCollatorForSeq2Seq(
        tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=16)
    if shuffle and not by_length:
        batches = DataLoader(encoded, batch_size=batch_size, shuffle=True, collate_fn=collate,
                             generator=torch.Generator().manual_seed(seed))
    else:
        batches = train.loader(encoded, tokenizer, batch_size, shuffle, seed, buckets=False, collate_fn=collate)
    batches.task = "causal-lm"  # what train.fit reads: the loss on the label tokens, weighted by their count
    return batches


def generate_labels(model, tokenizer, ds, instruction: str, *, device, max_new_tokens: int = 4,
                    batch_size: int = 32, max_length: int = 96, bf16: bool = True, cache: bool = True) -> list[str]:
    """Greedy answers to every example's prompt, batched, in the dataset's order (``generate.decode``).

    ``cache=False`` decodes without ``generate``: one full forward pass per new token, right-padded, as in
    training. It is the slow reference that the cached path is tested against (a peft prefix model decodes
    through ``generate.new_tokens``, which keeps its prefix).
    """
    ids = _all_prompt_ids(tokenizer, instruction, ds, max_length)
    return generate.decode(model, tokenizer, ids, device=device, max_new_tokens=max_new_tokens,
                           batch_size=batch_size, bf16=bf16, cache=cache)


def text_examples(texts, tokenizer, max_length: int = 128):
    """Plain language-model examples (every token in the loss), each text cut to ``max_length`` tokens: the
    general text a forgetting check scores, or replays during fine-tuning."""
    import datasets
    rows = [tokenizer(t, truncation=True, max_length=max_length) for t in texts]
    return datasets.Dataset.from_dict({"input_ids": [r["input_ids"] for r in rows],
                                       "attention_mask": [r["attention_mask"] for r in rows],
                                       "labels": [r["input_ids"] for r in rows]})


@torch.inference_mode()
def label_nll(model, tokenizer, encoded, *, device, batch_size: int = 16, bf16: bool = True) -> tuple[float, int]:
    """Total negative log-likelihood of the labelled tokens of ``encoded`` examples, and how many there are."""
    model.to(device).eval()
    total, count = 0.0, 0
    for batch in loader(encoded, tokenizer, batch_size, shuffle=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        n = losses.items(batch, "tokens")
        with autocast(device, bf16):
            total += losses.label_loss(model, batch).item() * n
        count += n
    return total, count


def perplexity(model, tokenizer, texts, *, device, max_length: int = 128, batch_size: int = 16,
               bf16: bool = True) -> float:
    """Perplexity of ``model`` on ``texts`` (each cut to ``max_length`` tokens), through the local evaluate
    module: exp(total negative log-likelihood / scored tokens)."""
    from .metrics import load
    total, count = label_nll(model, tokenizer, text_examples(texts, tokenizer, max_length), device=device,
                             batch_size=batch_size, bf16=bf16)
    return load("perplexity").compute(nll=[total], n_tokens=[count])["perplexity"]


def parse(answer: str, label_words) -> int:
    """Index of the label word the answer is (case and surrounding punctuation aside), else -1."""
    word = re.sub(r"^\W+|\W+$", "", answer.lower())
    words = [w.lower() for w in label_words]
    return words.index(word) if word in words else -1


def label_metrics(answers, references, label_words) -> dict:
    """Classification metrics of generated answers (an answer that is not a label word counts as wrong),
    plus ``format_ok``: the share of answers that are exactly a label word."""
    predicted = [parse(a, label_words) for a in answers]
    scores = classification_metrics(predicted, list(references), len(label_words))
    return {**scores, "format_ok": float(np.mean([p >= 0 for p in predicted]))}


def label_token_ids(tokenizer, label_words) -> list[int]:
    """The first token of each label word, as it follows the prompt; they must differ to tell labels apart."""
    ids = [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in label_words]
    if len(set(ids)) < len(ids):
        raise FtkitError(f"label words {list(label_words)} share a first token: pick words that start differently")
    return ids


@torch.inference_mode()
def verbalizer_logits(model, tokenizer, ds, instruction: str, label_words, *, device, batch_size: int = 32,
                      max_length: int = 96, bf16: bool = True) -> np.ndarray:
    """Next-token logits of the label words' first tokens after each prompt: one row per example."""
    model.to(device).eval()
    token_ids = torch.tensor(label_token_ids(tokenizer, label_words))
    result = np.zeros((len(ds), len(token_ids)), dtype=np.float32)
    ids = _all_prompt_ids(tokenizer, instruction, ds, max_length)
    for rows, batch in generate.sorted_batches(tokenizer, ids, batch_size, side="right"):
        batch = batch.to(device)
        with autocast(device, bf16):
            picked = generate.last_logits(model, batch)[:, token_ids.to(device)]
        result[rows] = picked.float().cpu().numpy()
    return result
