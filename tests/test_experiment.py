"""Tests for ftkit.experiment: the constructor's checks, timers, and the results.json a run leaves behind."""

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import ftkit
from ftkit import experiment, paths
from ftkit.platform.errors import FtkitError
from helpers import one_line_error

DOCUMENTED_KEYS = {"notebook", "profile", "model", "dataset", "seed", "params", "metrics", "key_metric",
                   "trainable_params", "total_params", "train_seconds", "peak_memory_mb", "device", "versions"}
TINY_BERT_2 = 1_011_426  # see test_models.py


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("FTKIT_PROFILE", raising=False)
    monkeypatch.setenv("FTKIT_RUNS", str(tmp_path / "runs"))  # never write into the checkout's runs/


@pytest.fixture(scope="module")
def tiny():
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=2)
    return model


class FakeClock:
    """Stands in for ``time`` inside ftkit.experiment: ``perf_counter`` returns ``now``, set by the test."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def make(tmp_path, **kwargs):
    args = dict(profile="smoke", model="minilm", dataset="sms-spam", seed=3, output_dir=tmp_path / "run",
                lr=1e-3, epochs=2)
    args.update(kwargs)
    return ftkit.Experiment("test_nb", **args)


def write_csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- construction

def test_constructor_resolves_everything(tmp_path):
    exp = make(tmp_path)
    assert exp.notebook == "test_nb"
    assert exp.profile is ftkit.get_profile("smoke")
    assert (exp.model, exp.model_requested) == ("tiny-bert", "minilm")
    assert exp.dataset == "sms-spam"
    assert exp.seed == 3
    assert exp.params == {"lr": 0.001, "epochs": 2}
    assert exp.output_dir == tmp_path / "run"
    assert exp.device == torch.device("cpu")
    assert exp.timings == {}
    assert not (tmp_path / "run").exists()  # nothing written before finish()


def test_constructor_seeds_torch(tmp_path):
    make(tmp_path, seed=5)
    got = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(got, torch.rand(3))


def test_profile_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_PROFILE", "smoke")
    exp = make(tmp_path, profile="cpu")
    assert exp.profile.name == "smoke" and exp.model == "tiny-bert"


def test_cpu_profile_keeps_real_model(tmp_path):
    exp = make(tmp_path, profile="cpu")
    assert exp.model == "minilm"
    assert exp.resolve_model("smollm2-135m-instruct") == "smollm2-135m-instruct"


def test_resolve_model_and_load_dataset_follow_the_profile(tmp_path):
    exp = make(tmp_path)
    assert exp.resolve_model("smollm2-135m-instruct") == "tiny-llama"
    ds = exp.load_dataset()
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [48, 32, 32]
    ds = exp.load_dataset(max_train=100)
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [100, 32, 32]


def test_bad_hyper_parameter_raises_before_anything_else(tmp_path):
    # a finished output_dir and a missing data file would both be errors too: lr is reported first,
    # and nothing is created on disk
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "results.json").write_text("{}")
    with pytest.raises(FtkitError) as excinfo:
        make(tmp_path, lr="abc", dataset=str(tmp_path / "missing.csv"), output_dir=finished)
    assert str(excinfo.value).startswith("parameter 'lr' must be a number")
    with pytest.raises(FtkitError, match="parameter 'lr'"):
        make(tmp_path, lr="abc", output_dir=tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_missing_dataset_file_raises_at_construction(tmp_path):
    path = str(tmp_path / "mine.csv")
    with pytest.raises(FtkitError) as excinfo:
        make(tmp_path, dataset=path)
    assert "\n" not in str(excinfo.value)
    assert repr(path) in str(excinfo.value) and "does not exist" in str(excinfo.value)


def test_bad_dataset_file_raises_at_construction(tmp_path):
    path = write_csv(tmp_path, "mine.csv", "body,category\n" + "x,y\n" * 20)
    with pytest.raises(FtkitError, match="it has body, category"):
        make(tmp_path, dataset=path)


def test_good_dataset_file_is_accepted(tmp_path):
    path = write_csv(tmp_path, "mine.csv", "text,label\n" + "".join(f"m{i},{i % 2}\n" for i in range(30)))
    exp = make(tmp_path, dataset=path)
    assert exp.dataset == path
    assert [len(exp.load_dataset()[s]) for s in ("train", "validation", "test")] == [24, 3, 3]


# ---------------------------------------------------------------- output folders

@pytest.mark.parametrize("empty", ["", None])
def test_empty_output_dir_goes_under_ftkit_runs_interactive(tmp_path, empty, tiny):
    exp = make(tmp_path, output_dir=empty)
    assert exp.output_dir.parent == tmp_path / "runs" / "interactive"
    assert exp.output_dir.name.startswith("test_nb-")
    assert not exp.output_dir.exists()
    exp.finish(metrics={"f1": 1.0}, key_metric="f1", model=tiny)
    assert (exp.output_dir / "results.json").is_file()


def test_runs_root_defaults_to_the_checkout(monkeypatch):
    monkeypatch.delenv("FTKIT_RUNS")
    assert paths.runs_root() == Path(__file__).resolve().parents[1] / "runs"  # the checkout the tests run in


def test_finished_output_dir_is_never_overwritten(tmp_path, tiny):
    make(tmp_path).finish(metrics={"f1": 0.25}, key_metric="f1", model=tiny)
    before = (tmp_path / "run" / "results.json").read_text()
    message = one_line_error(lambda: make(tmp_path))
    assert repr(str(tmp_path / "run")) in message and "results.json" in message
    assert (tmp_path / "run" / "results.json").read_text() == before


def test_unfinished_output_dir_is_reusable(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("partial")
    assert make(tmp_path).output_dir == tmp_path / "run"


# ---------------------------------------------------------------- timers and finish

def test_timer_accumulates(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(experiment, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    exp = make(tmp_path)
    clock.now = 10.0
    with exp.timer("train"):
        clock.now = 12.5
    clock.now = 20.0
    with exp.timer("train"):
        clock.now = 21.25
    with pytest.raises(RuntimeError):
        with exp.timer("eval"):  # the time is kept even when the block fails
            clock.now = 22.0
            raise RuntimeError("boom")
    assert exp.timings == {"train": 3.75, "eval": 0.75}
    clock.now = 30.0
    result = exp.finish(metrics={"f1": 0.5}, key_metric="f1")
    assert result["train_seconds"] == 3.75
    assert result["timings"] == {"train": 3.75, "eval": 0.75}
    assert result["wall_seconds"] == 30.0


def test_finish_writes_results_json(tmp_path, tiny):
    exp = make(tmp_path)
    for p in tiny.bert.parameters():
        p.requires_grad = False
    try:
        result = exp.finish(metrics={"f1": 0.5, "accuracy": np.float32(0.75), "mentions_paris": True},
                            key_metric="f1", model=tiny, chat_answer="Paris.")
    finally:
        for p in tiny.parameters():
            p.requires_grad = True
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["results.json"]  # no .tmp left
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert DOCUMENTED_KEYS <= set(written)
    assert written == json.loads(json.dumps(result, default=float))
    assert {k: written[k] for k in ("notebook", "profile", "model", "model_requested", "dataset", "seed",
                                    "params", "key_metric", "chat_answer")} == {
        "notebook": "test_nb", "profile": "smoke", "model": "tiny-bert", "model_requested": "minilm",
        "dataset": "sms-spam", "seed": 3, "params": {"lr": 0.001, "epochs": 2}, "key_metric": "f1",
        "chat_answer": "Paris."}
    assert written["metrics"] == {"f1": 0.5, "accuracy": 0.75, "mentions_paris": True}
    assert (written["trainable_params"], written["total_params"]) == (66, TINY_BERT_2)
    assert written["train_seconds"] == 0.0  # no "train" timer was used
    assert written["peak_memory_mb"] > 0
    assert written["device"].startswith("CPU ")
    assert set(written["versions"]) == {"ftkit", "torch", "transformers", "peft", "datasets", "evaluate",
                                        "accelerate"}
    assert written["versions"]["ftkit"] == ftkit.__version__
    assert torch.__version__.split("+")[0] == written["versions"]["torch"].split("+")[0]


def test_finish_without_model(tmp_path):
    result = make(tmp_path, model=None, dataset=None).finish(metrics={"loss": 1.5}, key_metric="loss")
    assert (result["model"], result["dataset"]) == (None, None)
    assert (result["trainable_params"], result["total_params"]) == (None, None)


def test_key_metric_must_be_a_metric(tmp_path, tiny):
    exp = make(tmp_path)
    message = one_line_error(lambda: exp.finish(metrics={"f1": 0.5, "accuracy": 0.7}, key_metric="f1_after", model=tiny))
    assert "'f1_after'" in message and "f1, accuracy" in message
    assert not (tmp_path / "run").exists()


def test_second_finish_on_the_same_output_dir_does_not_overwrite(tmp_path, tiny):
    first, second = make(tmp_path, seed=1), make(tmp_path, seed=2)
    first.finish(metrics={"f1": 0.1}, key_metric="f1", model=tiny)
    try:
        second.finish(metrics={"f1": 0.2}, key_metric="f1", model=tiny)
    except FtkitError:
        pass
    assert json.loads((tmp_path / "run" / "results.json").read_text())["seed"] == 1


def test_checkpoints_live_in_the_output_dir_until_the_run_finishes(tmp_path):
    exp = make(tmp_path, model=None, dataset=None)
    assert exp.checkpoints == tmp_path / "run" / "checkpoints"
    exp.checkpoints.mkdir(parents=True)
    (exp.checkpoints / "latest").write_text("step-0000001")
    assert make(tmp_path, model=None, dataset=None).output_dir == exp.output_dir  # unfinished: resumable
    exp.finish(metrics={"loss": 1.5}, key_metric="loss")
    assert not exp.checkpoints.exists() and (exp.output_dir / "results.json").exists()
