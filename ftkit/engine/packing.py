"""Packing for causal LMs: a batch's examples laid end to end in a few rows instead of one padded row each.

    batches = lm.loader(encoded, tok, batch_size=16, pack=True)   # the same examples per step, less padding

Each row holds several examples; ``position_ids`` restart at 0 where an example starts, and there is no
attention mask. transformers (5.x, sdpa and eager attention) reads such position ids as packed sequences and
masks attention block by block, so each example sees only itself: the same logits as unpacked, within
rounding. The batch keeps its examples (``batch_size`` examples per step, as without packing); only the
rows change, so the learning rate and the step count stay what they were.

transformers' ``DataCollatorWithFlattening`` puts a whole batch into one row, whose attention then costs
the square of the batch's token count; this collator fills rows of ``row_tokens`` instead (first fit,
longest first), which no library here offers.
"""
from __future__ import annotations

import torch


class PackedCollator:
    """Collates examples with ``input_ids`` and ``labels`` (-100 where there is no loss) into packed rows."""

    def __init__(self, tokenizer, row_tokens: int = 256):
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.row_tokens = row_tokens

    def rows(self, lengths: list[int]) -> list[list[int]]:
        """Example indices per row: longest first, each into the first row with room (rows of ``row_tokens``,
        or of the longest example when that is longer)."""
        capacity = max(self.row_tokens, *lengths)
        rows, room = [], []
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            j = next((j for j, r in enumerate(room) if r >= lengths[i]), None)
            if j is None:  # a new row
                j = len(rows)
                rows.append([])
                room.append(capacity)
            rows[j].append(i)
            room[j] -= lengths[i]
        return rows

    def __call__(self, examples: list[dict]) -> dict:
        lengths = [len(e["input_ids"]) for e in examples]
        rows = self.rows(lengths)
        width = max(sum(lengths[i] for i in row) for row in rows)
        ids, labels, positions = [], [], []
        for row in rows:
            r_ids, r_labels, r_pos = [], [], []
            for i in sorted(row):  # dataset order within a row
                r_ids += list(examples[i]["input_ids"])
                r_labels += [-100] + list(examples[i]["labels"])[1:]  # nothing predicts a first token across examples
                r_pos += range(lengths[i])
            pad = width - len(r_ids)  # padding is one more sequence at the end: no real token attends to it
            ids.append(r_ids + [self.pad_id] * pad)
            labels.append(r_labels + [-100] * pad)
            positions.append(r_pos + list(range(pad)))
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "position_ids": torch.tensor(positions)}
