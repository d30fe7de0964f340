"""Partial fine-tuning: freeze all but the top layers, unfreeze gradually, decay learning rates by depth.

Layer groups run bottom to top: the embeddings, each transformer layer, then the head (everything
else: pooler and classifier). ULMFiT (Howard & Ruder, 2018) unfreezes one more group per epoch from the
top down and gives lower layers smaller learning rates ("discriminative fine-tuning").
"""
from __future__ import annotations

from torch import nn

from ..engine import layout
from ..engine.train import decay_groups


def transformer_layers(model) -> nn.ModuleList:
    """The stack of transformer layers (``encoder.layer`` in BERT, ``layers`` in Llama, ``h`` in GPT-2, ...),
    found by ``layout.layers``."""
    return layout.layers(model)


def layer_groups(model) -> list[list[nn.Parameter]]:
    """[embeddings, layer 0, ..., layer N-1, head] as lists of parameters, for any family (``layout.groups``):
    the bottom group is everything before the first layer, the head everything after the last (BERT: pooler
    and classifier; GPT-2: the final LayerNorm and the score layer)."""
    return layout.groups(model)


def unfreeze_top(model, k: int) -> None:
    """Train the head and the top ``k`` transformer layers: k=0 the head alone, k=N all N layers,
    k=N+1 the embeddings too (everything)."""
    groups = layer_groups(model)
    if not 0 <= k <= len(groups) - 1:
        raise ValueError(f"k must be between 0 and {len(groups) - 1}, got {k}")
    for i, group in enumerate(groups):
        for p in group:
            p.requires_grad = i >= len(groups) - 1 - k


def gradual_unfreezing(model, stages: int | None = None):
    """An ``on_epoch_start`` for ``train.fit``: epoch 1 trains the head, each later epoch one group more.
    ``stages``: join the groups into that many blocks of neighbouring groups first (a 30-layer model in 3
    blocks unfreezes a third of itself per epoch)."""
    groups = layer_groups(model)
    if stages is not None:
        size = -(-len(groups) // stages)
        groups = [[p for g in groups[max(0, end - size):end] for p in g] for end in range(len(groups), 0, -size)][::-1]

    def on_epoch_start(epoch: int) -> None:
        for i, group in enumerate(groups):
            for p in group:
                p.requires_grad = i >= len(groups) - epoch
    return on_epoch_start


def discriminative_groups(model, lr: float, decay: float = 1.0, head_lr: float | None = None,
                          weight_decay: float = 0.01) -> list[dict]:
    """Optimizer groups over all parameters: the head at ``head_lr`` (default ``lr``), the top layer at
    ``lr``, and each group below at ``decay`` times the rate of the one above (decay=1: one rate)."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = []
    for depth, group in enumerate(reversed(layer_groups(model))):  # depth 0 = head
        rate = (head_lr or lr) if depth == 0 else lr * decay ** (depth - 1)
        out += [g for g in decay_groups([(names[id(p)], p) for p in group], weight_decay, lr=rate) if g["params"]]
    return out
