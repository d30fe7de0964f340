"""Cheap dropout masks (ftkit/engine/dropout.py) and length-bucketed batches (ftkit/engine/buckets.py): the same
operations as nn.Dropout and shuffled batches, checked against them."""
import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import ftkit
from ftkit import buckets
from ftkit import dropout as fd


def padding_share(batches, lengths: list[int]) -> float:
    """The share of the tokens in ``batches`` (lists of indices) that are padding, each batch padded to its
    longest example."""
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / padded


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_mask_keeps_one_minus_p_independently(p):
    torch.manual_seed(0)
    mask = fd.keep_mask((1000, 1001), p)
    assert mask.dtype == torch.bool and mask.shape == (1000, 1001)
    kept = mask.float()
    assert abs(kept.mean().item() - (1 - p)) < 0.003  # 1M draws: sd 0.0005
    # neighbours (the four 16-bit slices of one 64-bit draw) are uncorrelated
    a, b = kept.flatten()[:-1], kept.flatten()[1:]
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 0.01


def test_drop_is_dropout():
    torch.manual_seed(0)
    x = torch.randn(64, 100, requires_grad=True)
    y = fd.drop(x, 0.25)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert abs(kept.float().mean().item() - 0.75) < 0.02
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)  # gradient through the kept elements only
    assert fd.drop(x, 0.25, training=False) is x and fd.drop(x, 0.0) is x
    assert not fd.drop(x, 1.0).any()
    torch.manual_seed(1)
    first = fd.keep_mask((50,), 0.5)
    torch.manual_seed(1)
    assert torch.equal(first, fd.keep_mask((50,), 0.5))  # torch's seed decides the masks


def test_attention_matches_sdpa_with_the_mask(monkeypatch):
    """With every element kept, our attention is SDPA's, scaled by 1 / (1 - p), padding mask included."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 6, 8) for _ in range(3))
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    mask[1, :, :, 3:] = False  # the second example's last three tokens are padding
    module = torch.nn.Module().train()
    monkeypatch.setattr(fd, "keep_mask", lambda shape, p, device="cpu": torch.ones(shape, dtype=torch.bool))
    ours, _ = fd.attention(module, q, k, v, mask, dropout=0.2, scaling=0.3)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=0.3)
    assert ours.shape == ref.shape == (2, 6, 4, 8)
    assert torch.allclose(ours * 0.8, ref, atol=1e-5)
    module.eval()  # eval: transformers' own path, untouched
    assert torch.equal(fd.attention(module, q, k, v, mask, dropout=0.0)[0], sdpa_attention_forward(module, q, k, v, mask)[0])


def test_fast_dropout_swaps_in_and_puts_back(monkeypatch):
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    model.train()
    batch = tok(["a longer text of several words here", "short"], padding=True, return_tensors="pt")
    alone = tok(["short"], return_tensors="pt")
    monkeypatch.setattr(fd, "keep_mask", lambda shape, p, device="cpu": torch.ones(shape, dtype=torch.bool))
    with fd.fast_dropout(model):
        assert model.config._attn_implementation == fd.ATTENTION
        assert all("forward" in vars(m) for m in model.modules() if isinstance(m, torch.nn.Dropout))
        padded = model(**batch).logits[1]
        single = model(**alone).logits[0]
    assert torch.allclose(padded, single, atol=1e-5)  # the padding mask reaches our attention
    assert model.config._attn_implementation == "sdpa"
    assert not any("forward" in vars(m) for m in model.modules())
    with pytest.raises(RuntimeError), fd.fast_dropout(model):
        raise RuntimeError("a failing step")
    assert model.config._attn_implementation == "sdpa"  # put back after an error too
    assert not any("forward" in vars(m) for m in model.modules())
    with fd.fast_dropout(model, device="cuda"):  # on GPU nothing changes
        assert model.config._attn_implementation == "sdpa"


def test_length_buckets_cover_every_example_once_and_cut_padding():
    lengths = torch.randint(5, 70, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = buckets.LengthBuckets(lengths, 32, torch.Generator().manual_seed(0))
    first, second = list(sampler), list(sampler)
    assert len(sampler) == len(first) == 32  # 31 full batches and one of 8
    assert sorted(i for b in first for i in b) == list(range(1000))
    assert sorted(len(b) for b in first) == [8] + [32] * 31
    assert first != second  # a new order every epoch
    from transformers.trainer_pt_utils import LengthGroupedSampler
    grouped = list(LengthGroupedSampler(32, lengths=lengths, generator=torch.Generator().manual_seed(0)))
    trainer = padding_share([grouped[i:i + 32] for i in range(0, 1000, 32)], lengths)
    ours = padding_share(first, lengths)
    assert ours < 0.04 and trainer > 0.08 and ours < trainer / 3  # measured: 2.5% against 11.8%
    again = buckets.LengthBuckets(lengths, 32, torch.Generator().manual_seed(0))
    assert list(again) == first  # the seed decides the order
