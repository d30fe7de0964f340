"""Bottleneck adapters (Houlsby et al., 2019), written by hand.

peft has no bottleneck adapter, and the `adapters` library needs transformers 4.x, so this small module
fills the gap. An adapter is down-projection -> nonlinearity -> up-projection with a residual connection,
initialised near the identity (the up-projection starts at zero), so the pretrained model is unchanged
at step 0. One goes after the attention output projection and one after the feed-forward output of every
layer, before the residual add and LayerNorm (``layout.output_projections`` finds the two in any family:
BERT's ``attention.output.dense`` and ``output.dense``, Llama's ``o_proj`` and ``down_proj``, GPT-2's
``attn.c_proj`` and ``mlp.c_proj``). Only the adapters, the norms (optional) and the head train:
2·h·m + h + m parameters per adapter, for hidden size h and bottleneck m.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..engine import layout

FILE = "adapters.safetensors"


class Adapter(nn.Module):
    def __init__(self, hidden: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return x + self.up(nn.functional.gelu(self.down(x)))


class WithAdapter(nn.Module):
    """A frozen projection followed by its adapter."""

    def __init__(self, projection: nn.Module, bottleneck: int):
        super().__init__()
        self.projection = projection
        self.adapter = Adapter(layout.shape(projection)[1], bottleneck)

    def forward(self, x):
        return self.adapter(self.projection(x))


def add_adapters(model, bottleneck: int = 64, train_layernorm: bool = True):
    """Insert adapters into every layer, freeze the rest but the head (and norms); returns the model."""
    places, kept = layout.output_projections(model), _kept(model, train_layernorm)
    for p in model.parameters():
        p.requires_grad = False
    for layer in layout.layers(model):
        for path in places:
            parent_path, _, name = path.rpartition(".")
            parent = layer.get_submodule(parent_path)
            setattr(parent, name, WithAdapter(getattr(parent, name), bottleneck))
    for name, p in model.named_parameters():
        if ".adapter." in name or id(p) in kept:
            p.requires_grad = True
    return model


def _kept(model, train_layernorm: bool) -> dict[int, nn.Parameter]:
    """The pretrained tensors that train beside the adapters: the head (what comes after the layers: pooler,
    classifier, ...) and, with ``train_layernorm``, every norm; by id."""
    kept = {id(p): p for p in layout.groups(model)[-1]}
    if train_layernorm:
        kept.update({id(p): p for m in layout.norms(model) for p in m.parameters()})
    return kept


def expected_trainable(model, bottleneck: int, train_layernorm: bool = True) -> int:
    """What ``add_adapters`` leaves trainable, from the shapes of the unchanged ``model``: 2·w·m + w + m per
    adapter (w the width of the projection it follows), plus the norms and the head."""
    widths = [layout.shape(layer.get_submodule(path))[1] for layer in layout.layers(model)
              for path in layout.output_projections(model)]
    kept = _kept(model, train_layernorm)
    return sum(2 * w * bottleneck + w + bottleneck for w in widths) + sum(p.numel() for p in kept.values())


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The trained tensors only: what a saved adapter needs on top of the base model."""
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_adapters(model, folder) -> Path:
    """Save the trainable tensors (adapters, LayerNorms, head) to ``folder/adapters.safetensors``."""
    path = Path(folder) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(path))
    return path


def load_adapters(model, folder) -> None:
    """Load saved adapter tensors into a model prepared by ``add_adapters`` with the same bottleneck."""
    state = load_file(str(Path(folder) / FILE))
    missing = set(state) - {n for n, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"the model lacks {len(missing)} saved tensors (e.g. {sorted(missing)[0]}): call "
                         "add_adapters with the same bottleneck first")
    model.load_state_dict(state, strict=False)
