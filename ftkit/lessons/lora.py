"""LoRA bookkeeping around peft: the exact parameter count to expect, and the checks that a merged or
reloaded adapter computes what the trained one did. peft does the LoRA itself."""
from __future__ import annotations

import torch
from torch import nn


def targets(model, target_modules) -> dict[str, nn.Linear]:
    """The linear layers peft adapts for ``target_modules``: a name equal to a target or ending in '.target'."""
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)
            and any(name == t or name.endswith("." + t) for t in target_modules)}


def expected_params(model, r: int, target_modules) -> int:
    """r·(d_in + d_out) per adapted matrix (A is r x d_in, B is d_out x r), summed; call it on the base model."""
    return sum(r * (m.in_features + m.out_features) for m in targets(model, target_modules).values())


@torch.inference_mode()
def max_logit_diff(model_a, model_b, batch) -> float:
    """Largest absolute difference between two models' logits on one batch (both in eval mode, fp32)."""
    model_a.eval(), model_b.eval()
    return float((model_a(**batch).logits.float() - model_b(**batch).logits.float()).abs().max())
