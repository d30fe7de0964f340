"""A model's layout, found rather than assumed: its layers, embeddings, head, projections and norms, for any
transformers family (BERT's ``encoder.layer``, Llama's ``layers``, GPT-2's ``h``, OPT's ``decoder.layers`` ...).

Each family names its modules its own way, so nothing here reads a name of one family:

- the **layers** are the base model's ``nn.ModuleList`` whose length is ``config.num_hidden_layers``;
- the **embeddings** are ``get_input_embeddings()`` and whatever runs before the first layer in a forward
  pass (positions, token types, ELECTRA's projection), the **head** whatever runs after the last one (final
  norm, pooler, classifier, an untied output layer);
- the **projections** are the linear maps inside a layer (``nn.Linear``, or GPT-2's ``Conv1D``, whose
  weight is stored transposed); those inside the module whose class is an ``...Attention`` are the
  attention projections, the rest the feed-forward ones;
- peft's own per-architecture defaults pick LoRA's targets where it has them.

transformers offers ``get_input_embeddings``/``get_output_embeddings`` but no accessor for the layer stack
or the projections, and peft's ``"all-linear"`` cannot tell attention from feed-forward, so this is written here.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from ..platform.errors import FtkitError


def unwrap(model):
    """The transformers model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def describe(model) -> str:
    """'GPT2ForSequenceClassification (gpt2)': the class and the model_type, for error messages."""
    model = unwrap(model)
    return f"{type(model).__name__} ({getattr(model.config, 'model_type', '?')})"


def is_projection(module) -> bool:
    return isinstance(module, (nn.Linear, Conv1D))


def shape(module) -> tuple[int, int]:
    """(in, out) features of a projection; ``Conv1D`` stores its weight as (in, out), ``nn.Linear`` as (out, in)."""
    if isinstance(module, Conv1D):
        return tuple(module.weight.shape)
    return module.in_features, module.out_features


def _projection_here(name: str, module) -> bool:
    """A projection of the model itself: a plain one, or one that peft has wrapped (its ``base_layer``), but
    not the wrapped layer again nor peft's own lora_A/lora_B."""
    parts = name.split(".")
    if "base_layer" in parts or any(p.startswith("lora_") for p in parts):
        return False
    return is_projection(module) or is_projection(getattr(module, "base_layer", None))


def layers(model) -> nn.ModuleList:
    """The stack of transformer layers: the ``nn.ModuleList`` of ``num_hidden_layers`` blocks (the shallowest
    one, should there be several), or a one-line error for a model without one."""
    base = unwrap(model)
    n = getattr(base.config, "num_hidden_layers", None)
    found = [(name, m) for name, m in base.named_modules() if isinstance(m, nn.ModuleList) and len(m) == n and n]
    if not found:
        raise FtkitError(f"model {describe(model)} has no list of {n} transformer layers that ftkit can find: "
                         "this notebook needs a transformer whose config says num_hidden_layers")
    return min(found, key=lambda item: item[0].count("."))[1]


def _execution_order(model) -> dict[int, int]:
    """id(parameter) -> the step of a two-token forward pass at which its module first runs (eval mode, the
    caller's random state untouched); {} for a model that cannot run on token ids alone."""
    base, order = unwrap(model), {}
    owners = [m for m in base.modules() if any(True for _ in m.parameters(recurse=False))]

    def seen(module, *_):
        for p in module.parameters(recurse=False):
            order.setdefault(id(p), len(order))

    hooks = [m.register_forward_pre_hook(seen) for m in owners]
    modes = [m.training for m in base.modules()]
    device = next(base.parameters()).device
    try:
        base.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            ids = torch.tensor([[1, 2]], device=device)
            base(input_ids=ids, attention_mask=torch.ones_like(ids))
    except Exception:  # noqa: BLE001 - e.g. a model that needs pixel values: fall back to registration order
        order = {}
    finally:
        for hook in hooks:
            hook.remove()
        for m, mode in zip(base.modules(), modes):
            m.training = mode
    return order


def groups(model) -> list[list[nn.Parameter]]:
    """[embeddings, layer 0, ..., layer N-1, head] as lists of parameters: what runs before the first layer in
    a forward pass (the input embeddings, positions, token types, ELECTRA's projection, DeBERTa's relative
    positions) is the bottom group, what runs after the last one the head (final norm, pooler, classifier,
    an untied output layer). Found by running two tokens through the model once; a parameter that does not
    run there goes by registration order. Tied weights count once, in the bottom group."""
    stack = layers(model)
    owner = {id(p): i for i, layer in enumerate(stack) for p in layer.parameters()}
    embedding = {id(p) for p in unwrap(model).get_input_embeddings().parameters()}
    order = _execution_order(model)
    first_layer = min((order[i] for i in owner if i in order), default=None)
    bottom, inside, head = [], [[] for _ in stack], []
    for p in model.parameters():  # each tensor once, in registration order
        if id(p) in owner:
            inside[owner[id(p)]].append(p)
        elif id(p) in embedding:
            bottom.append(p)
        elif id(p) in order and first_layer is not None:
            (bottom if order[id(p)] < first_layer else head).append(p)
        else:
            (head if any(inside) else bottom).append(p)
    return [bottom, *inside, head]


def _in_attention(layer) -> set[str]:
    """Names (relative to ``layer``) of the modules inside its attention block(s)."""
    blocks = [name for name, m in layer.named_modules() if name and type(m).__name__.endswith("Attention")]
    return {name for name, _ in layer.named_modules() if any(name == b or name.startswith(b + ".") for b in blocks)}


def projections(model, where: str = "all") -> list[str]:
    """Names of the projections in one transformer layer (relative to it, e.g. 'self_attn.q_proj'), in
    registration order: ``where`` = 'attention', 'mlp' (feed-forward) or 'all'. As peft target_modules
    they select the same projection of every layer (peft matches a name's ending)."""
    if where not in ("all", "attention", "mlp"):
        raise FtkitError(f"unknown projection kind {where!r}: choose one of all, attention, mlp")
    layer = layers(model)[0]
    attention = _in_attention(layer)
    if where != "mlp" and not attention:
        raise FtkitError(f"model {describe(model)} has no attention module that ftkit can find in its layers: "
                         "give the projections to adapt as a parameter (lora_targets)")
    names = [name for name, m in layer.named_modules() if _projection_here(name, m)
             and (where == "all" or (name in attention) == (where == "attention"))]
    if not names:
        raise FtkitError(f"model {describe(model)} has no {where} projections (nn.Linear or Conv1D) in its layers")
    return names


def output_projections(model) -> tuple[str, str]:
    """The attention output projection and the feed-forward output projection of a layer (relative names):
    the last projection of each kind that maps back to the hidden size (where Houlsby adapters go)."""
    layer, hidden = layers(model)[0], unwrap(model).config.hidden_size
    out = []
    for kind in ("attention", "mlp"):
        back = [name for name in projections(model, kind) if shape(layer.get_submodule(name))[1] == hidden]
        if not back:
            raise FtkitError(f"model {describe(model)}: no {kind} projection in its layers maps back to the hidden "
                             "size, so there is no place for an adapter")
        out.append(back[-1])
    return tuple(out)


def norms(model) -> list[nn.Module]:
    """Every normalisation module (LayerNorm, RMSNorm and the families' own), found by class name."""
    return [m for m in model.modules()
            if "norm" in type(m).__name__.lower() and any(True for _ in m.parameters(recurse=False))]


def lora_targets(model, names=None, parameter: str = "lora_targets") -> list[str]:
    """LoRA's target modules: ``names`` if given (checked: each must name a projection of the layers, by
    peft's rule, a module name equal to it or ending in '.name'), else peft's own default for the
    architecture (query and value in most families, GPT-2's fused ``c_attn``), else every attention
    projection found in the layers."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS
    if names:
        if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
            raise FtkitError(f"parameter {parameter!r} must be a list of module names such as ['q_proj', 'v_proj'], "
                             f"got {names!r}")
        found = projections(model, "all")
        unknown = [n for n in names if not any(f == n or f.endswith("." + n) for f in found)]
        if unknown:
            raise FtkitError(f"parameter {parameter!r}: {', '.join(map(repr, unknown))} is no projection of "
                             f"{describe(model)}: choose among {', '.join(found)}, or leave it empty for peft's "
                             "default")
        return list(names)
    found = DEFAULTS.get(getattr(unwrap(model).config, "model_type", None))
    return list(found) if found else projections(model, "attention")


def kv_width(model) -> int:
    """Width of the keys (and values) one layer's attention keeps per token, which a prefix supplies:
    ``num_key_value_heads * head_dim`` under grouped-query attention, else the hidden size (peft's rule)."""
    config = unwrap(model).config
    hidden = getattr(config, "hidden_size", None)
    if getattr(config, "num_key_value_heads", None):
        head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
        return config.num_key_value_heads * head_dim
    return hidden


__all__ = ["unwrap", "describe", "is_projection", "shape", "layers", "groups", "projections", "output_projections",
           "norms", "lora_targets", "kv_width"]
