"""ftkit.adapters: exact counts (2hm + h + m per adapter), identity at start, save and reload."""
import pytest
import torch

import ftkit
from ftkit import adapters

H, LAYERS, K = 32, 2, 2


def adapter_params(h, m):
    return 2 * h * m + h + m


@pytest.mark.parametrize("m", [1, 8, 64])
def test_trainable_count_tiny_bert(m):
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=K)
    adapters.add_adapters(model, bottleneck=m)
    norms = (1 + 2 * LAYERS) * 2 * H
    head = (H * H + H) + (H * K + K)
    assert ftkit.count_params(model)[0] == 2 * LAYERS * adapter_params(H, m) + norms + head


def test_without_layernorms():
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=K)
    adapters.add_adapters(model, bottleneck=8, train_layernorm=False)
    assert ftkit.count_params(model)[0] == 2 * LAYERS * adapter_params(H, 8) + (H * H + H) + (H * K + K)


def test_minilm_counts():
    model, _ = ftkit.load_classifier("minilm", num_labels=3)
    adapters.add_adapters(model, bottleneck=64)
    assert ftkit.count_params(model) == (754_179, 23_309_571)


def test_llama_placement_and_count():
    model, _ = ftkit.load_causal_lm("tiny-llama")
    adapters.add_adapters(model, bottleneck=8)
    names = [n for n, _ in model.named_parameters() if ".adapter." in n]
    assert any("self_attn.o_proj.adapter" in n for n in names) and any("mlp.down_proj.adapter" in n for n in names)
    h = model.config.hidden_size
    norms = (2 * 2 + 1) * h  # two RMSNorms per layer + the final one, weights only
    assert ftkit.count_params(model)[0] == 2 * 2 * adapter_params(h, 8) + norms


def test_new_adapters_are_the_identity():
    model, tok = ftkit.load_classifier("minilm", num_labels=2)
    batch = tok(["free entry to win a prize", "see you at lunch"], padding=True, return_tensors="pt")
    model.eval()
    with torch.inference_mode():
        before = model(**batch).logits
        adapters.add_adapters(model, bottleneck=16)
        after = model(**batch).logits
    assert torch.equal(before, after)


def test_save_and_reload_only_the_adapter(tmp_path):
    torch.manual_seed(0)
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=K)
    adapters.add_adapters(model, bottleneck=8)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)  # as if trained
    path = adapters.save_adapters(model, tmp_path)
    saved = adapters.trainable_state(model)
    assert path.stat().st_size < 4 * sum(t.numel() for t in saved.values()) + 20_000
    fresh, _ = ftkit.load_classifier("tiny-bert", num_labels=K)
    adapters.load_adapters(adapters.add_adapters(fresh, bottleneck=8), tmp_path)
    batch = tok(["hello there", "win cash now"], padding=True, return_tensors="pt")
    model.eval(), fresh.eval()
    with torch.inference_mode():
        assert torch.equal(model(**batch).logits, fresh(**batch).logits)


def test_loading_into_a_model_without_adapters_fails_clearly(tmp_path):
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=K)
    adapters.save_adapters(adapters.add_adapters(model, bottleneck=8), tmp_path)
    plain, _ = ftkit.load_classifier("tiny-bert", num_labels=K)
    with pytest.raises(ValueError, match="call add_adapters with the same bottleneck first"):
        adapters.load_adapters(plain, tmp_path)
