"""benchmarks/train_speed.py runs every way on both workloads (tiny models: the code path, not the speed)."""
import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("train_speed", ROOT / "benchmarks" / "train_speed.py")
train_speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_speed)


@pytest.mark.parametrize("workload", list(train_speed.WORKLOADS))
def test_every_way_trains_the_same_steps_on_the_same_tokens(workload, capsys):
    rows = train_speed.main(["--profile", "smoke", "--workload", workload, "--train", "48"])
    assert [r["way"] for r in rows] == list(train_speed.WAYS)
    steps = math.ceil(48 / train_speed.WORKLOADS[workload]["batch_size"])
    assert [r["steps"] for r in rows] == [steps] * 4
    assert len({r["real_tokens"] for r in rows}) == 1
    plain, ftkit_row = rows[0], rows[-1]
    assert plain["padded_tokens"] == 48 * train_speed.MAX_LENGTH  # every example padded to max_length
    assert ftkit_row["padded_tokens"] < plain["padded_tokens"]  # dynamic padding: grouped or packed
    assert all(r["flops_per_token"] > 0 and 0 <= r["accuracy"] <= 1 for r in rows)
    printed = capsys.readouterr().out
    assert printed.count(f"| {workload} |") == 4 and "bf16" in printed


def test_the_extra_ways_train_the_same_steps(capsys):
    rows = train_speed.main(["--profile", "smoke", "--workload", "smollm2", "--train", "48",
                             "--ways", "ftkit", "ftkit-fp32", "ftkit-grouped"])
    assert [r["way"] for r in rows] == ["ftkit", "ftkit-fp32", "ftkit-grouped"]
    assert [r["steps"] for r in rows] == [3] * 3 and len({r["real_tokens"] for r in rows}) == 1
    assert rows[0]["padded_tokens"] == rows[1]["padded_tokens"]  # the same batches, in fp32
    assert rows[0]["padded_tokens"] != rows[2]["padded_tokens"]  # packed rows, not length-grouped ones


@pytest.mark.skipif(train_speed.torch.cuda.is_available(), reason="a CUDA GPU is here: the gpu profile runs")
def test_the_gpu_profile_without_a_gpu_stops_with_one_line():
    with pytest.raises(SystemExit) as stop:
        train_speed.main(["--profile", "gpu", "--workload", "minilm"])
    assert str(stop.value) == ("error: --profile gpu needs a CUDA GPU and torch sees none here: "
                               "use --profile cpu (or smoke)")


def test_the_plain_loop_pads_to_the_longest_example_when_one_runs_past_max_length():
    from datasets import Dataset
    model, tok, examples, _ = train_speed.setup("smollm2", "smoke", 16, train_speed.torch.device("cpu"))
    row = examples[0]
    lengths = [10, train_speed.MAX_LENGTH + 12, 20]  # an SMS prompt can run past 128 tokens
    longer = Dataset.from_list([{k: (v * 200)[:n] for k, v in row.items()} for n in lengths])
    steps, padded = train_speed.run_plain(model, tok, longer, train_speed.WORKLOADS["smollm2"], "smollm2",
                                          train_speed.torch.device("cpu"))
    assert (steps, padded) == (1, 3 * (train_speed.MAX_LENGTH + 12))
