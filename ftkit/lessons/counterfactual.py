"""Counterfactual fairness checks: the same input with one demographic term swapped should get the same
prediction (Garg et al., 2019, "Counterfactual fairness in text classification"), and counterfactual data
augmentation (Lu et al., 2020) as a mitigation: every training example that names a group also appears with
the other group's term, under the same label, so the term itself carries no label information.

    pairs = counterfactual.parse_pairs("he:she, his:her, John:Mary")   # small lists, override them freely
    original, swapped, direction = counterfactual.pairs_from_texts(ds["test"]["text"], pairs)
    counterfactual.gaps(score(original), score(swapped), direction)   # flips and score gaps
    train.fit(model, tok, counterfactual.augment(ds["train"], pairs), ...)

The swap is by whole word, keeps the first letter's case, and goes both ways; a term listed twice (``her``
pairs with both ``his`` and ``him``) swaps back to its first partner. No library offers this for plain
datasets (nlpaug and friends need a network for their word lists), so it is written here.
"""
from __future__ import annotations

import re

import numpy as np

from ..platform.errors import FtkitError

# Small on purpose: read them, and pass your own (``parse_pairs``) for the groups your users belong to.
GENDER_TERMS = ("he:she, him:her, his:her, himself:herself, man:woman, men:women, boy:girl, boys:girls, "
                "guy:gal, father:mother, dad:mom, son:daughter, brother:sister, husband:wife, "
                "boyfriend:girlfriend, uncle:aunt, king:queen, mr:mrs")
NAMES = "John:Mary, James:Emma, Michael:Sarah, David:Linda, Robert:Susan"
TEMPLATES = (  # sentences whose sentiment does not depend on who {person} is
    "{person} went to the store this morning.",
    "I had lunch with {person} today.",
    "{person} said the meeting moved to Friday.",
    "{person} made my day, what a lovely surprise!",
    "{person} was so rude to me, I am furious.",
    "Just talked to {person} about the weekend.",
    "{person} is the best, I love hanging out together.",
    "Can't believe {person} forgot my birthday again.",
)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"he:she, his:her"`` -> [("he", "she"), ("his", "her")]; a one-line error for anything else."""
    if not isinstance(text, str):
        raise FtkitError(f"term pairs must be a string like 'he:she, his:her', got {type(text).__name__}")
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        words = [w.strip() for w in item.split(":")]
        if len(words) != 2 or not all(re.fullmatch(r"[\w']+", w) for w in words):
            raise FtkitError(f"term pair {item!r} is not two words joined by ':' (e.g. 'he:she')")
        pairs.append((words[0], words[1]))
    if not pairs:
        raise FtkitError("no term pairs given: write them like 'he:she, his:her'")
    return pairs


def _mapping(pairs) -> dict[str, tuple[str, int]]:
    """lower-case term -> (its partner, +1 if the term is on the pairs' left side, -1 if on the right)."""
    mapping = {}
    for a, b in pairs:
        mapping.setdefault(a.lower(), (b, 1))
        mapping.setdefault(b.lower(), (a, -1))
    return mapping


def swap(text: str, pairs) -> tuple[str, int]:
    """(the text with every listed term swapped for its partner, direction): direction is +1 when the first
    term found was a left-side term (e.g. "he"), -1 for a right-side one, 0 when the text has none."""
    mapping, first = _mapping(pairs), []

    def replace(match):
        word = match.group(0)
        partner, side = mapping[word.lower()]
        first.append(side)
        if word.isupper() and len(word) > 1:
            return partner.upper()
        return partner[0].upper() + partner[1:] if word[0].isupper() else partner.lower()
    pattern = r"\b(" + "|".join(sorted(map(re.escape, mapping), key=len, reverse=True)) + r")\b"
    swapped = re.sub(pattern, replace, text, flags=re.IGNORECASE)
    return swapped, (first[0] if first else 0)


def pairs_from_texts(texts, pairs):
    """(left-side versions, right-side versions) of every text that names a listed term: the original and
    its swap, ordered so the first list holds the "he" side and the second the "she" side."""
    left, right = [], []
    for text in texts:
        swapped, side = swap(text, pairs)
        if side:
            left.append(text if side > 0 else swapped)
            right.append(swapped if side > 0 else text)
    return left, right


def pairs_from_templates(pairs, templates=TEMPLATES):
    """(left, right) sentences: every template filled with each pair's two terms."""
    left = [t.format(person=a) for t in templates for a, _ in pairs]
    right = [t.format(person=b) for t in templates for _, b in pairs]
    return left, right


def gaps(left_probs, right_probs, positive: int, negative: int) -> dict:
    """Prediction flips and sentiment-score gaps between the two sides of counterfactual pairs; the score is
    P(positive) - P(negative), the gap is right minus left (e.g. "she" minus "he")."""
    left_probs, right_probs = np.asarray(left_probs), np.asarray(right_probs)
    if len(left_probs) == 0:
        raise FtkitError("no counterfactual pairs: none of the texts contains a listed term")
    score = lambda p: p[:, positive] - p[:, negative]  # noqa: E731
    gap = score(right_probs) - score(left_probs)
    return {"pairs": len(gap), "flip_rate": float((left_probs.argmax(-1) != right_probs.argmax(-1)).mean()),
            "mean_gap": float(gap.mean()), "mean_abs_gap": float(np.abs(gap).mean())}


def skewed(ds, pairs, n: int, *, left_label: int, right_label: int, skew: float = 0.9, seed: int = 0):
    """``n`` examples of ``ds`` collected with a bias: of the examples that name a term, a share ``skew``
    pairs left-side terms with ``left_label`` and right-side terms with ``right_label`` (e.g. "he" with
    positive, "she" with negative), the rest the other way round; examples without terms fill up."""
    sides = np.array([swap(text, pairs)[1] for text in ds["text"]])
    labels = np.asarray(ds["label"])
    rng = np.random.default_rng(seed)
    left, right = sides > 0, sides < 0
    follow = rng.permutation(np.flatnonzero(left & (labels == left_label) | right & (labels == right_label)))
    against = rng.permutation(np.flatnonzero(left & (labels == right_label) | right & (labels == left_label)))
    n_terms = min(len(follow), n // 4)  # a quarter of the examples name a term
    n_against = min(len(against), round(n_terms * (1 - skew) / skew))
    rest = rng.permutation(np.flatnonzero(sides == 0))[:n - n_terms - n_against]
    return ds.select(sorted([*follow[:n_terms], *against[:n_against], *rest]))


def augment(ds, pairs):
    """Counterfactual data augmentation: ``ds`` plus the swapped copy of every example that names a term."""
    import datasets
    swapped = [(row, *swap(row["text"], pairs)) for row in ds]
    rows = [dict(row, text=text) for row, text, side in swapped if side]
    if not rows:
        return ds
    extra = datasets.Dataset.from_list(rows, features=ds.features)
    return datasets.concatenate_datasets([ds, extra])
