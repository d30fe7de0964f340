"""The best-practice helpers of notebooks 09-11: schedules and the range test, exact gradient accumulation,
early stopping that restores the best weights, label smoothing."""
import math

import pytest
import torch
from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

import ftkit
from ftkit import batching, losses, runtime, schedules, train
from ftkit.lessons.early_stopping import EarlyStopping
from ftkit.platform.profiles import PROFILES
from helpers import one_line_error

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return ftkit.load_dataset("sms-spam", profile=PROFILES["smoke"])


def tiny_bert():
    runtime.seed_everything(0)
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2, labels=["ham", "spam"])
    return model.eval(), tok  # dropout off: gradients are deterministic


def micro_batches(tok, ds, sizes):
    rows = train.tokenize(ds, tok, 64).rename_column("label", "labels")
    return batching.micro_batches(rows, sizes, DataCollatorWithPadding(tok))


# ---------------------------------------------------------------- schedules

def test_schedule_curves_have_their_shapes():
    assert schedules.curve("constant", 10, 2) == [1.0] * 10
    warm = schedules.curve("constant_with_warmup", 10, 2)
    assert warm[:3] == [0.0, 0.5, 1.0] and warm[-1] == 1.0
    lin = schedules.curve("linear", 10, 2)
    assert lin[2] == 1.0 and lin[-1] == pytest.approx(1 / 8)
    cos = schedules.curve("cosine", 10, 0)
    assert cos[0] == 1.0 and cos[5] == pytest.approx(0.5) and cos[-1] < 0.03


def test_unknown_schedule_is_one_line():
    with pytest.raises(ftkit.FtkitError, match="unknown schedule 'step': choose one of constant, "):
        schedules.check("step")


def test_range_test_grows_the_rate_geometrically(data):
    model, tok = tiny_bert()
    history = train.fit(model, tok, data["train"], epochs=2, lr=1e-5, batch_size=8, device=CPU, warmup=0,
                        schedule=schedules.range_test(1e-5, 1e-1))
    lrs = [lr for r in history for lr in r["step_lrs"]]
    assert len(lrs) == 12 and lrs[0] == pytest.approx(1e-5) and lrs[-1] == pytest.approx(1e-1)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios))


def test_suggest_reads_a_range_test_curve():
    lrs = [10 ** (-6 + i / 10) for i in range(50)]       # 1e-6 .. ~8e-2
    losses = [1.0 - 0.01 * i if i < 30 else 0.7 + 0.2 * (i - 30) for i in range(50)]  # falls, then blows up
    got = schedules.suggest(lrs, losses, beta=0.0)       # no smoothing: the curve as given
    assert got["minimum"] == pytest.approx(lrs[30])
    assert got["tenth_of_minimum"] == pytest.approx(lrs[30] / 10)
    assert got["steepest"] <= got["minimum"]


# ---------------------------------------------------------------- gradient accumulation

def test_exact_accumulation_equals_the_big_batch(data):
    model, tok = tiny_bert()
    big = batching.accumulated_gradients(model, micro_batches(tok, data["train"], [14]))
    exact = batching.accumulated_gradients(model, micro_batches(tok, data["train"], [4, 4, 4, 2]))
    naive = batching.accumulated_gradients(model, micro_batches(tok, data["train"], [4, 4, 4, 2]), "naive")
    assert set(big) == {n for n, p in model.named_parameters()}
    assert batching.max_abs_diff(big, exact) <= 1e-6
    assert batching.max_abs_diff(big, naive) > 1e-4  # the short last micro-batch weighs 2x too much


def test_token_weighting_for_a_causal_lm():
    runtime.seed_everything(0)
    model, tok = ftkit.load_causal_lm("tiny-llama")
    model.eval()
    texts = ftkit.load_dataset("wikipedia", max_train=8)["train"]["text"]
    rows = [{"input_ids": tok(t, truncation=True, max_length=n)["input_ids"]} for t, n in zip(texts, (8, 8, 30, 30))]
    collate = DataCollatorForLanguageModeling(tok, mlm=False)
    micro = [collate(rows[:2]), collate(rows[2:])]
    assert [losses.items(b, "tokens") for b in micro] == [14, 58]  # (8 - 1) x 2, (30 - 1) x 2
    big = batching.accumulated_gradients(model, [collate(rows)], unit="tokens")
    exact = batching.accumulated_gradients(model, micro, unit="tokens")
    naive = batching.accumulated_gradients(model, micro, "naive", unit="tokens")
    assert batching.max_abs_diff(big, exact) <= 1e-6
    assert batching.max_abs_diff(big, naive) > 1e-4


def test_fit_with_accumulation_steps_once_per_group(data):
    model, tok = tiny_bert()
    history = train.fit(model, tok, data["train"], epochs=1, lr=1e-3, batch_size=4, accumulate=4, device=CPU)
    assert len(history[0]["step_losses"]) == 3  # 48 examples, 12 micro-batches of 4, 3 steps


def test_accumulation_steps():
    assert batching.accumulation_steps(32, 8) == 4
    with pytest.raises(ftkit.FtkitError, match="effective_batch 30 is not a multiple of micro_batch 8"):
        batching.accumulation_steps(30, 8)


def test_step_seconds_measures_a_step(data):
    model, tok = tiny_bert()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    got = batching.step_seconds(model, micro_batches(tok, data["train"], [4, 4]), opt, steps=2)
    assert got["seconds"] > 0 and got["peak_mb"] is None  # no CUDA here


def test_activation_memory_grows_with_the_batch(data):
    model, tok = tiny_bert()
    one, four = (batching.activation_mb(model, micro_batches(tok, data["train"], [n])[0]) for n in (1, 4))
    assert 0 < one < four


# ---------------------------------------------------------------- early stopping

def test_early_stopping_stops_after_patience_and_restores_the_best():
    model = torch.nn.Linear(2, 1)
    stopper = EarlyStopping("val_loss", mode="min", patience=2, min_delta=0.01)
    values = [1.0, 0.8, 0.795, 0.9, 0.7]  # 0.795 is not better by more than min_delta
    stops = []
    for epoch, v in enumerate(values, 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        stops.append(stopper.step({"epoch": epoch, "val_loss": v}, model))
        if stops[-1]:
            break
    assert stops == [False, False, False, True]  # epoch 5 never runs
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 4
    stopper.restore(model)
    assert model.weight.flatten().tolist() == [2.0, 2.0]


def test_early_stopping_in_fit(data):
    model, tok = tiny_bert()
    stopper = EarlyStopping("val_accuracy", mode="max", patience=1, min_delta=1.0)  # nothing can improve by 1
    history = train.fit(model, tok, data["train"], epochs=5, lr=1e-3, batch_size=16, device=CPU,
                        eval_ds=data["validation"], early_stopping=stopper)
    assert len(history) == 2 and stopper.best_epoch == 1 and stopper.stopped_epoch == 2


def test_early_stopping_needs_the_monitored_value():
    with pytest.raises(ftkit.FtkitError, match="monitors 'val_loss', which the epoch record lacks"):
        EarlyStopping().step({"epoch": 1, "train_loss": 1.0}, torch.nn.Linear(1, 1))


# ---------------------------------------------------------------- label smoothing

def test_label_smoothing_changes_the_training_loss(data):
    losses = {}
    for eps in (0.0, 0.2):
        model, tok = tiny_bert()
        losses[eps] = train.fit(model, tok, data["train"], epochs=1, lr=1e-3, batch_size=16, device=CPU,
                                label_smoothing=eps, bf16=False)[0]["step_losses"][0]
    # the first step sees the same batch and weights: the smoothed loss of 2 classes is
    # (1 - eps/2) * CE + (eps/2) * CE(other class), larger than CE when the model is near uniform
    assert losses[0.0] != losses[0.2] and all(math.isfinite(v) for v in losses.values())


# ---------------------------------------------------------------- out of memory: smaller micro-batches, same batch

def _oom_above(model, limit):
    """Make ``model`` fail like a GPU that is out of memory whenever it trains on more than ``limit`` rows."""
    def hook(module, args, kwargs):
        if module.training and kwargs["input_ids"].shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return model.register_forward_pre_hook(hook, with_kwargs=True)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(capsys):
    ds = ftkit.load_dataset("sms-spam", max_train=64, max_eval=16)
    args = dict(epochs=1, lr=1e-3, device=torch.device("cpu"), log=False)
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    _oom_above(model, 4)
    runtime.seed_everything(0)
    micro, history = batching.fit_in_memory(model, tok, ds["train"], effective_batch=16, **args)
    assert micro == 4 and len(history[0]["step_losses"]) == 4  # 64 examples, 16 per optimizer step
    assert "retrying with micro-batches of 8 x 2" in capsys.readouterr().out
    direct, _ = ftkit.load_classifier("tiny-bert", num_labels=2)
    runtime.seed_everything(0)
    train.fit(direct, tok, ds["train"], batch_size=4, accumulate=4, **args)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), direct.state_dict().values())), \
        "the failed attempts left their updates in the weights"


def test_nothing_fits_is_a_one_line_error():
    ds = ftkit.load_dataset("sms-spam", max_train=16, max_eval=16)
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    _oom_above(model, 0)
    message = one_line_error(lambda: batching.fit_in_memory(model, tok, ds["train"], effective_batch=8, epochs=1,
                                                           lr=1e-3, device=torch.device("cpu"), log=False))
    assert "even a micro-batch of 1 does not fit in memory" in message
