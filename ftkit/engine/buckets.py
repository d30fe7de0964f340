"""Training batches of near-equal length, in random order: the least padding that still shuffles.

A batch is padded to its longest example, so every pad token is compute spent on nothing. transformers'
``LengthGroupedSampler`` (Trainer's ``group_by_length``) sorts only within random "mega-batches" of a few
batches, which on 1,000 tweets in batches of 32 still leaves 21% of the tokens as padding. Here each epoch
shuffles all examples, sorts them by length (a stable sort, so equal lengths stay in random order), cuts
the sorted list into batches and shuffles the batches: 4% padding on the same tweets. No library we use
offers a batch sampler like this, so it is written here.

What stays random: the order of the batches, and which examples of equal (or close) length share one.
What does not: a batch holds texts of about the same length. Where length gives the label away, batches
then hold mostly one class, in random order. That is why ``train.loader`` uses it for classification, where
every notebook passed its checks with it, and ``lm.loader`` does not: on SMS prompts (spam is long) notebook
17's full fine-tuning of SmolLM2 learnt nothing with it (benchmarks/train_speed.py measures the gain).
"""
from __future__ import annotations

import torch
from torch.utils.data import Sampler


class LengthBuckets(Sampler):
    """A batch sampler for ``DataLoader(batch_sampler=...)``: lists of indices, one per batch; a new order
    each epoch from ``generator`` (the data order's own random state, which checkpoints save)."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator):
        self.lengths, self.batch_size, self.generator = list(lengths), batch_size, generator

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        order.sort(key=self.lengths.__getitem__)  # stable: ties keep their random order
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]

