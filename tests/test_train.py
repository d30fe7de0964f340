"""Tests for ftkit.train: the classification recipe on tiny-bert (fast) and one real learning check on minilm."""

import math

import datasets
import numpy as np
import pytest
import torch

import ftkit
from ftkit import runtime, train
from ftkit.platform.profiles import PROFILES

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def smoke_data():
    """sms-spam capped by the smoke profile: 48 train (6 spam), 32 validation, 32 test."""
    return ftkit.load_dataset("sms-spam", profile=PROFILES["smoke"])


def tiny_bert(seed=0):
    runtime.seed_everything(seed)
    return ftkit.load_classifier("tiny-bert", num_labels=2, labels=["ham", "spam"])


def fit_tiny(data, seed=0, **kwargs):
    model, tok = tiny_bert(seed)
    args = dict(epochs=2, lr=1e-3, batch_size=16, device=CPU, max_length=64, seed=seed)
    args.update(kwargs)
    return model, tok, train.fit(model, tok, data["train"], **args)


# ---------------------------------------------------------------- fit

def test_fit_returns_one_finite_record_per_epoch(smoke_data):
    _, _, history = fit_tiny(smoke_data, epochs=3)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for record in history:
        assert set(record) == {"epoch", "train_loss", "step_losses", "step_lrs"}
        assert math.isfinite(record["train_loss"]) and record["train_loss"] > 0
        # 48 training examples in batches of 16: 3 steps an epoch, the mean of which is the epoch's loss
        assert len(record["step_losses"]) == len(record["step_lrs"]) == 3
        assert record["train_loss"] == pytest.approx(sum(record["step_losses"]) / 3)


def test_fit_with_eval_ds_adds_validation_metrics(smoke_data):
    _, _, history = fit_tiny(smoke_data, epochs=1, eval_ds=smoke_data["validation"])
    (record,) = history
    assert set(record) == {"epoch", "train_loss", "step_losses", "step_lrs", "val_accuracy", "val_macro_f1",
                           "val_f1", "val_loss"}
    assert math.isfinite(record["val_loss"]) and record["val_loss"] > 0
    for key in ("val_accuracy", "val_macro_f1", "val_f1"):
        assert 0.0 <= record[key] <= 1.0
    # accuracy on 32 examples is a multiple of 1/32
    assert round(record["val_accuracy"] * 32, 6) == round(record["val_accuracy"] * 32)


def test_fit_changes_the_weights(smoke_data):
    model, tok = tiny_bert()
    before = model.classifier.weight.detach().clone()
    train.fit(model, tok, smoke_data["train"], epochs=1, lr=1e-3, batch_size=16, device=CPU, max_length=64)
    assert not torch.equal(before, model.classifier.weight.detach())


def test_same_seed_gives_identical_losses_and_logits(smoke_data):
    model_a, tok, first = fit_tiny(smoke_data, seed=0)
    model_b, _, second = fit_tiny(smoke_data, seed=0)
    assert first == second
    logits_a = train.predict(model_a, tok, smoke_data["test"], device=CPU)
    logits_b = train.predict(model_b, tok, smoke_data["test"], device=CPU)
    assert np.array_equal(logits_a, logits_b)


def test_different_seed_gives_different_losses(smoke_data):
    assert fit_tiny(smoke_data, seed=0)[2] != fit_tiny(smoke_data, seed=1)[2]


# ---------------------------------------------------------------- predict and evaluate

def test_predict_keeps_dataset_order(smoke_data):
    # minilm, not tiny-bert: the random tiny model gives nearly the same logits to every text
    model, tok = ftkit.load_classifier("minilm", num_labels=2)
    ds = smoke_data["test"]
    lengths = [len(ids) for ids in tok(list(ds["text"]))["input_ids"]]
    assert lengths != sorted(lengths)  # predict() batches by length, so it really reorders
    logits = train.predict(model, tok, ds, device=CPU, batch_size=8, bf16=False)
    assert logits.shape == (32, 2) and logits.dtype == np.float32
    # the rows differ enough that a mix-up would show
    gaps = np.abs(logits[:, None, :] - logits[None, :, :]).max(-1)[~np.eye(32, dtype=bool)]
    assert gaps.min() > 1e-4  # measured 5.8e-4
    backwards = train.predict(model, tok, ds.select(range(31, -1, -1)), device=CPU, batch_size=8, bf16=False)
    np.testing.assert_allclose(backwards[::-1], logits, atol=1e-5)
    for i in (0, 7, 31):  # one example at a time: no padding, no batching, no reordering
        alone = train.predict(model, tok, ds.select([i]), device=CPU, bf16=False)
        np.testing.assert_allclose(alone[0], logits[i], atol=1e-5)


def test_evaluate_matches_predict(smoke_data):
    model, tok = tiny_bert()
    ds = smoke_data["test"]
    logits = train.predict(model, tok, ds, device=CPU)
    got = train.evaluate(model, tok, ds, device=CPU)
    assert set(got) == {"accuracy", "macro_f1", "f1", "loss"}
    assert got["accuracy"] == float(np.mean(logits.argmax(-1) == np.array(ds["label"])))
    picked = logits[np.arange(len(ds)), ds["label"]]
    log_probs = picked - np.log(np.exp(logits).sum(-1))
    assert got["loss"] == pytest.approx(-float(np.mean(log_probs)), rel=1e-5)


def test_predict_on_unlabelled_texts():
    model, tok = tiny_bert()
    ds = datasets.Dataset.from_dict({"text": ["see you at 6", "WIN a FREE prize, text now"]})
    assert train.predict(model, tok, ds, device=CPU).shape == (2, 2)


# ---------------------------------------------------------------- optimizer groups

def test_optimizer_groups_tiny_bert():
    model, _ = tiny_bert()
    decay, no_decay = train.optimizer_groups(model, 0.01)
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)
    # 19 biases + 5 LayerNorm weights (embeddings + 2 per layer) in no-decay; 17 weight matrices in decay
    assert (len(decay["params"]), len(no_decay["params"])) == (17, 24)
    assert (sum(p.numel() for p in decay["params"]), sum(p.numel() for p in no_decay["params"])) == (1_010_624, 802)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = [names[id(p)] for p in no_decay["params"]]
    assert sum(n.endswith("bias") for n in no_decay_names) == 19
    assert sum(n.endswith("LayerNorm.weight") for n in no_decay_names) == 5
    assert all(n.endswith(".weight") and "LayerNorm" not in n for n in (names[id(p)] for p in decay["params"]))


def test_optimizer_groups_tiny_llama():
    model, _ = ftkit.load_causal_lm("tiny-llama")
    decay, no_decay = train.optimizer_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    # RMSNorm weights (2 per layer + the final norm) are not decayed; llama has no biases
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
        "model.norm.weight"]
    # tied embedding once + 7 matrices per layer
    assert len(decay["params"]) == 15


def test_optimizer_groups_skip_frozen_parameters():
    model, _ = tiny_bert()
    for p in model.bert.parameters():
        p.requires_grad = False
    decay, no_decay = train.optimizer_groups(model, 0.01)
    assert [p is model.classifier.weight for p in decay["params"]] == [True]
    assert [p is model.classifier.bias for p in no_decay["params"]] == [True]


# ---------------------------------------------------------------- a real model really learns

# Measured with this exact setup (1 torch thread, this machine's bf16 CPU autocast), test F1 of class spam
# on 200 test messages (26 spam):
#   seed 0: untrained 0.197 -> trained 0.981;  seed 1: 0.175 -> 0.963;  seed 2: 0.196 -> 1.000
# The thresholds leave a wide margin below the worst seed (0.963) and far above the untrained head (<0.2).
MIN_TRAINED_F1 = 0.80
MIN_GAIN = 0.50


def test_minilm_learns_sms_spam():
    data = ftkit.load_dataset("sms-spam", max_train=300, max_eval=200)
    assert (len(data["train"]), len(data["test"]), sum(data["test"]["label"])) == (300, 200, 26)
    runtime.seed_everything(0)
    model, tok = ftkit.load_classifier("minilm", num_labels=2, labels=["ham", "spam"])
    before = train.evaluate(model, tok, data["test"], device=CPU, max_length=64)
    history = train.fit(model, tok, data["train"], epochs=2, lr=1e-4, batch_size=16, device=CPU,
                        max_length=64, seed=0)
    after = train.evaluate(model, tok, data["test"], device=CPU, max_length=64)
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert after["f1"] > MIN_TRAINED_F1
    assert after["f1"] > before["f1"] + MIN_GAIN


@pytest.mark.skipif(not ftkit.runtime.bf16_supported("cpu"), reason="this CPU has no bf16 units: the cache is off")
def test_frozen_weights_in_bf16_give_the_same_logits_and_come_back_untouched():
    from peft import LoraConfig, TaskType, get_peft_model
    net = get_peft_model(ftkit.load_causal_lm("tiny-llama")[0],
                         LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, target_modules=["q_proj", "v_proj"]))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.inference_mode(), ftkit.runtime.autocast("cpu"):
        expected = net(input_ids=ids).logits
        with ftkit.runtime.bf16_frozen_weights(net, "cpu"):
            dtypes = {n: p.dtype for n, p in net.named_parameters()}
            cached = net(input_ids=ids).logits
    assert torch.equal(cached, expected)  # autocast used these very bf16 values
    assert dtypes["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"] == torch.bfloat16
    assert dtypes["base_model.model.model.layers.0.mlp.up_proj.weight"] == torch.bfloat16
    assert dtypes["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"] == torch.float32
    assert dtypes["base_model.model.model.embed_tokens.weight"] == torch.float32
    assert all(torch.equal(before[k], v) and v.dtype == before[k].dtype for k, v in net.state_dict().items())
