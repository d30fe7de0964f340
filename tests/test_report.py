"""The comparison report (ftkit.report) and the curves it reads (Experiment.track), on hand-made results."""
import json
import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ftkit
from ftkit import report
from helpers import one_line_error


def result(notebook, seed, value, *, key="macro_f1", finished="2026-01-01T00:00:00", curve=None, **metrics):
    return {"notebook": notebook, "profile": "cpu", "model": "minilm", "dataset": "tweet-sentiment", "seed": seed,
            "key_metric": key, "metrics": {key: value, **metrics}, "trainable_params": 1_000,
            "total_params": 400_000, "train_seconds": 10.0 + seed, "peak_memory_mb": 900.0 + seed,
            "finished_at": finished, "curves": {"run": curve or [1.0, 0.8, 0.6, 0.5, 0.45]}}


def save(folder, name, res):
    (folder / name).mkdir(parents=True)
    (folder / name / "results.json").write_text(json.dumps(res))


@pytest.fixture
def runs_dir(tmp_path):
    for s, v in enumerate([0.6, 0.7, 0.8]):
        save(tmp_path, f"04_lora-seed{s}", result("04_lora", s, v))
    save(tmp_path, "09_learning_rate", result("09_learning_rate", 0, 0.5))
    save(tmp_path, "01_full_finetuning", result("01_full_finetuning", 0, 0.3, finished="2026-01-01T00:00:00"))
    save(tmp_path, "again/01_full_finetuning", result("01_full_finetuning", 0, 0.4, finished="2026-01-02T00:00:00",
                                                      general_perplexity_change=1.5))
    save(tmp_path, "99_comparison_report", result("99_comparison_report", 0, 3, key="notebooks_reported"))
    save(tmp_path, "09_learning_rate/2proc", {"processes": 2, "accuracy": 0.9})  # a launched script's, not a run
    return tmp_path


def test_table_mean_and_spread_over_seeds(runs_dir):
    runs = report.load(runs_dir, exclude=("99_comparison_report",))
    assert len(runs) == 5  # 3 seeds of 04, one 09, and 01 once: its newer run replaces the older one
    tab = report.table(runs).set_index("notebook")
    assert list(tab.index) == ["01_full_finetuning", "04_lora", "09_learning_rate"]
    lora = tab.loc["04_lora"]
    assert lora["mean"] == pytest.approx(0.7) and lora["sd"] == pytest.approx(0.1) and lora["seeds"] == 3
    assert lora["trainable_%"] == pytest.approx(0.25)
    assert lora["train_seconds"] == pytest.approx(11.0) and lora["peak_mb"] == 902.0
    assert math.isnan(tab.loc["09_learning_rate", "sd"]) and tab.loc["09_learning_rate", "seeds"] == 1
    assert tab.loc["01_full_finetuning", "mean"] == 0.4  # the newest run of the same seed
    assert tab.loc["01_full_finetuning", "general_ppl_change"] == 1.5
    assert math.isnan(tab.loc["04_lora", "general_ppl_change"])
    pretty = report.pretty(tab.reset_index())
    assert pretty.loc["04_lora", "key metric"] == "0.700 ± 0.100 (3 seeds)"
    assert pretty.loc["04_lora", "trainable params"] == "1,000 (0.25%)"
    assert pretty.loc["09_learning_rate", "key metric"] == "0.500"
    assert pretty.loc["01_full_finetuning", "general ppl change"] == "+1.5%"
    assert pretty.loc["04_lora", "general ppl change"] == ""  # not measured: blank, not nan
    assert "general ppl change" not in report.pretty(tab.drop("01_full_finetuning").reset_index())


def test_plots_and_files(runs_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    runs = report.load(runs_dir, exclude=("99_comparison_report",))
    tab = report.table(runs)
    md = report.write(tab, out)
    assert "0.700 ± 0.100 (3 seeds)" in md.read_text() and (out / "report.csv").exists()
    report.plot_tradeoffs(tab, out / "tradeoffs.png")
    fig = report.plot_curves(runs, out / "curves.png")
    assert len(fig.axes[0].get_lines()) == 3  # one per notebook, however many seeds
    for name in ("tradeoffs.png", "curves.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG") and (out / name).stat().st_size > 10_000


def test_nothing_to_report_is_one_line(tmp_path):
    assert "does not exist: run the notebooks first" in one_line_error(lambda: report.load(tmp_path / "nope"))
    assert "no results.json under" in one_line_error(lambda: report.load(tmp_path))


def test_default_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_RUNS", str(tmp_path))
    assert report.default_folder(str(tmp_path / "run-1" / "99_comparison_report")) == tmp_path / "run-1"
    assert report.default_folder("") == tmp_path / "interactive"
    (tmp_path / "latest").mkdir()
    assert report.default_folder("") == tmp_path / "latest"


def test_track_writes_tensorboard_and_results(tmp_path):
    exp = ftkit.Experiment("track_test", profile="smoke", seed=0, output_dir=str(tmp_path / "run"))
    history = [{"epoch": 1, "train_loss": 0.9, "step_losses": [1.0, 0.8], "step_lrs": [1e-3, 5e-4],
                "val_macro_f1": 0.5},
               {"epoch": 2, "train_loss": 0.55, "step_losses": [0.6, 0.5], "step_lrs": [2e-4, 1e-4],
                "val_macro_f1": 0.6}]
    exp.track(history, "LoRA r=8")
    exp.track([0.3, 0.2, 0.1], "plain list")
    events = EventAccumulator(str(exp.tensorboard / "LoRA r=8")).Reload()
    assert [(e.step, round(e.value, 6)) for e in events.Scalars("train/loss")] == [(1, 1.0), (2, 0.8), (3, 0.6),
                                                                                  (4, 0.5)]
    assert [round(e.value, 6) for e in events.Scalars("train/lr")] == [1e-3, 5e-4, 2e-4, 1e-4]
    assert [(e.step, round(e.value, 6)) for e in events.Scalars("val/macro_f1")] == [(2, 0.5), (4, 0.6)]
    res = exp.finish(metrics={"f1": 1.0}, key_metric="f1")
    assert res["curves"] == {"LoRA r=8": [1.0, 0.8, 0.6, 0.5], "plain list": [0.3, 0.2, 0.1]}
    assert "give train.fit's history" in one_line_error(lambda: exp.track([], "empty"))
    assert "give train.fit's history" in one_line_error(lambda: exp.track([{"epoch": 1}], "no steps"))
