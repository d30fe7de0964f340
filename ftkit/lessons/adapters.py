"""Bottleneck adapters (Houlsby et al., 2019), written by hand.

peft has no bottleneck adapter, and the `adapters` library needs transformers 4.x, so this small module
fills the gap. An adapter is down-projection -> nonlinearity -> up-projection with a residual connection,
initialised near the identity (the up-projection starts at zero), so the pretrained model is unchanged
at step 0. One goes after the attention output projection and one after the feed-forward output of every
layer, before the residual add and LayerNorm. Only the adapters, the LayerNorms (optional) and the head
train: 2·h·m + h + m parameters per adapter, for hidden size h and bottleneck m.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .freezing import layer_groups, transformer_layers

# where the adapters go, per architecture: the attention output and feed-forward output projections
TARGETS = {"bert": ("attention.output.dense", "output.dense"), "llama": ("self_attn.o_proj", "mlp.down_proj")}
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

    def __init__(self, projection: nn.Linear, bottleneck: int):
        super().__init__()
        self.projection = projection
        self.adapter = Adapter(projection.out_features, bottleneck)

    def forward(self, x):
        return self.adapter(self.projection(x))


def add_adapters(model, bottleneck: int = 64, train_layernorm: bool = True):
    """Insert adapters into every layer, freeze the rest but the head (and LayerNorms); returns the model."""
    arch = "llama" if model.config.model_type == "llama" else "bert"
    for p in model.parameters():
        p.requires_grad = False
    for layer in transformer_layers(model):
        for path in TARGETS[arch]:
            parent_path, _, name = path.rpartition(".")
            parent = layer.get_submodule(parent_path)
            setattr(parent, name, WithAdapter(getattr(parent, name), bottleneck))
    head = {id(p) for p in layer_groups(model)[-1]}  # pooler and classifier
    for name, p in model.named_parameters():
        is_norm = "layernorm" in name.lower().replace("_", "") or name.endswith("norm.weight")
        if ".adapter." in name or id(p) in head or (train_layernorm and is_norm):
            p.requires_grad = True
    return model


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
