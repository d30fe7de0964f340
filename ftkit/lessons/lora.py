"""LoRA bookkeeping around peft: the exact parameter count to expect, and the checks that a merged or
reloaded adapter computes what the trained one did. peft does the LoRA itself."""
from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from ..engine import layout

# the head a sequence classifier trains in full beside its adapters: peft's modules_to_save for SEQ_CLS
HEAD_NAMES = ("classifier", "score")


def targets(model, target_modules) -> dict[str, nn.Module]:
    """The projections (``nn.Linear``, GPT-2's ``Conv1D``) peft adapts for ``target_modules``: a name equal to a
    target or ending in '.target'."""
    return {name: m for name, m in model.named_modules() if layout.is_projection(m)
            and any(name == t or name.endswith("." + t) for t in target_modules)}


def expected_params(model, r: int, target_modules) -> int:
    """r·(d_in + d_out) per adapted matrix (A is r x d_in, B is d_out x r), summed over the shapes of the
    modules it targets (a fused projection such as GPT-2's c_attn, h -> 3h, counts its full width); call it
    on the base model."""
    return sum(r * sum(layout.shape(m)) for m in targets(model, target_modules).values())


def formula(model, r: int, target_modules) -> str:
    """``expected_params`` written out by shape: '4 x 8 x (32 + 32)' per group of equal shapes."""
    shapes = Counter(layout.shape(m) for m in targets(model, target_modules).values())
    return " + ".join(f"{n} x {r} x ({a} + {b})" for (a, b), n in shapes.items())


def head_params(model) -> int:
    """Parameters of a sequence classifier's head (``classifier`` or ``score``), which peft trains in full."""
    base = layout.unwrap(model)
    return sum(p.numel() for name in HEAD_NAMES if hasattr(base, name) for p in getattr(base, name).parameters())


@torch.inference_mode()
def max_logit_diff(model_a, model_b, batch) -> float:
    """Largest absolute difference between two models' logits on one batch (both in eval mode, fp32)."""
    model_a.eval(), model_b.eval()
    return float((model_a(**batch).logits.float() - model_b(**batch).logits.float()).abs().max())
