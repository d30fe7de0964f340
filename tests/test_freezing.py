"""ftkit.freezing on tiny-bert (hidden 32, feed-forward 64, 2 layers): exact counts, schedules, rates."""
import pytest
import torch

import ftkit
from ftkit import freezing, train

H, F, LAYERS, K = 32, 64, 2, 3
PER_LAYER = 4 * H * H + 2 * H * F + 9 * H + F            # 8,544
HEAD = (H * H + H) + (H * K + K)                          # pooler + classifier: 1,155
EMBEDDINGS = (30522 + 512 + 2) * H + 2 * H                # word, position, token type, LayerNorm: 991,232


@pytest.fixture
def tiny():
    return ftkit.load_classifier("tiny-bert", num_labels=K)[0]


def test_layer_groups_sizes(tiny):
    sizes = [sum(p.numel() for p in g) for g in freezing.layer_groups(tiny)]
    assert sizes == [EMBEDDINGS, PER_LAYER, PER_LAYER, HEAD]
    assert sum(sizes) == ftkit.count_params(tiny)[1]


@pytest.mark.parametrize("k,expected", [(0, HEAD), (1, HEAD + PER_LAYER), (2, HEAD + 2 * PER_LAYER),
                                        (3, HEAD + 2 * PER_LAYER + EMBEDDINGS)])
def test_unfreeze_top_counts(tiny, k, expected):
    freezing.unfreeze_top(tiny, k)
    assert ftkit.count_params(tiny)[0] == expected


def test_unfreeze_top_keeps_the_top_layers(tiny):
    freezing.unfreeze_top(tiny, 1)
    layers = freezing.transformer_layers(tiny)
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())


@pytest.mark.parametrize("k", [-1, 4])
def test_unfreeze_top_rejects_out_of_range(tiny, k):
    with pytest.raises(ValueError, match="between 0 and 3"):
        freezing.unfreeze_top(tiny, k)


def test_gradual_unfreezing_adds_one_group_per_epoch_from_the_top(tiny):
    hook = freezing.gradual_unfreezing(tiny)
    counts = []
    for epoch in (1, 2, 3, 4, 5):
        hook(epoch)
        counts.append(ftkit.count_params(tiny)[0])
    assert counts == [HEAD, HEAD + PER_LAYER, HEAD + 2 * PER_LAYER] + [HEAD + 2 * PER_LAYER + EMBEDDINGS] * 2


def test_discriminative_groups_rates_and_decay(tiny):
    groups = freezing.discriminative_groups(tiny, lr=1e-4, decay=0.5, head_lr=1e-2, weight_decay=0.1)
    assert sum(p.numel() for g in groups for p in g["params"]) == ftkit.count_params(tiny)[1]
    rates = sorted({g["lr"] for g in groups}, reverse=True)
    assert rates == pytest.approx([1e-2, 1e-4, 5e-5, 2.5e-5])  # head, top layer, layer below, embeddings
    no_decay = [g for g in groups if g["weight_decay"] == 0.0]
    names = {id(p): n for n, p in tiny.named_parameters()}
    assert all(names[id(p)].endswith(train.NO_DECAY) for g in no_decay for p in g["params"])


def test_gradual_unfreezing_trains_only_unfrozen_groups(tiny):
    ds = ftkit.load_dataset("sms-spam", max_train=32, max_eval=16)
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    embeddings = [p.detach().clone() for p in freezing.layer_groups(model)[0]]
    head = [p.detach().clone() for p in freezing.layer_groups(model)[-1]]
    train.fit(model, tok, ds["train"], epochs=2, lr=1e-3, batch_size=16, device="cpu",
              param_groups=freezing.discriminative_groups(model, 1e-3),
              on_epoch_start=freezing.gradual_unfreezing(model))
    assert all(torch.equal(a, b) for a, b in zip(embeddings, freezing.layer_groups(model)[0]))
    assert not all(torch.equal(a, b) for a, b in zip(head, freezing.layer_groups(model)[-1]))


def test_gradual_unfreezing_in_stages_unfreezes_blocks_of_layers():
    model, _ = ftkit.load_causal_lm("tiny-llama")
    groups = freezing.layer_groups(model)  # embeddings, the layers, the head
    start = freezing.gradual_unfreezing(model, stages=2)
    first_block = -(-len(groups) // 2)
    start(1)
    trainable = [all(p.requires_grad for p in g) for g in groups]
    assert trainable == [False] * (len(groups) - first_block) + [True] * first_block
    start(2)
    assert all(p.requires_grad for p in model.parameters())
