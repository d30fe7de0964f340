"""The side-by-side table every run writes: one row per notebook, the same columns for every method."""
from ci import harness


def result(notebook, trainable, total, f1):
    return {"notebook": notebook, "model": "minilm", "dataset": "tweet-sentiment", "key_metric": "macro_f1",
            "metrics": {"macro_f1": f1}, "trainable_params": trainable, "total_params": total,
            "train_seconds": 12.5, "wall_seconds": 30.04, "peak_memory_mb": 2048.0}


def test_summary_rows_and_files(tmp_path):
    rows = harness.summary_rows([result("04_lora", 74_883, 22_789_254, 0.6812345), result("no_model", None, None, 0.5)])
    assert rows[0]["trainable_%"] == 0.329 and rows[0]["value"] == 0.6812 and rows[0]["peak_mb"] == 2048.0
    assert rows[1]["trainable_%"] is None
    table = harness.write_summary(rows, tmp_path)
    assert [c.strip() for c in table.splitlines()[0].split("|")[1:-1]] == list(harness.SUMMARY_COLUMNS)
    header = (tmp_path / "summary.csv").read_text().splitlines()[0]
    assert header == ",".join(harness.SUMMARY_COLUMNS)
    assert "04_lora" in (tmp_path / "summary.md").read_text()
