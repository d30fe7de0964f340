"""The bad-input catalogue: one row per mistake a user can make, each ending in a one-line FtkitError that
names the problem and the fix, raised before any training starts. The same mistakes made through papermill
(``-p lr abc``) are checked on the notebooks themselves in test_notebook_inputs.py (BAD_PARAMETERS, BAD_LATER)."""
import json

import pytest
import torch

import ftkit
from ftkit import export, launch, lm, methods, params, profiles, schedules, sft, train
from ftkit.lessons.early_stopping import EarlyStopping
from helpers import csv_rows, one_line_error, write


def rows(n, labels=("neg", "pos")):
    return "text,label\n" + csv_rows(n, labels)


def run(tmp_path, **kwargs):
    args = dict(profile="smoke", model="minilm", dataset="sms-spam", seed=0, output_dir=tmp_path / "run", lr=1e-3)
    return ftkit.Experiment("catalogue", **{**args, **kwargs})


def classifier(k=2):
    return ftkit.load_classifier("tiny-bert", num_labels=k)[0]


def finished(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text("{}")
    return run(tmp_path, output_dir=tmp_path / "done")


def labels_beyond_the_head(tmp_path, scoring=False):
    ds = ftkit.load_dataset(write(tmp_path, "five.csv", rows(50, labels="abcde")))
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    if scoring:
        train.evaluate(model, tok, ds["test"], device=torch.device("cpu"))
    train.fit(model, tok, ds["train"], epochs=1, lr=1e-3, batch_size=8, device=torch.device("cpu"), log=False)


def failing_script(tmp_path):
    script = write(tmp_path, "train.py", "raise ValueError('column review not found: pass --text-column')\n")
    launch.run(script, 1)


# (call, words the message must contain): names, parameter values, methods, output folders
CASES = {
    "profile-unknown": (lambda t: profiles.get_profile("fast"), ["unknown profile 'fast'", "auto, cpu, gpu, smoke"]),
    "profile-not-a-string": (lambda t: run(t, profile=3), ["parameter 'profile' must be a string"]),
    "model-unknown": (lambda t: ftkit.load_classifier("no-such-model-ftkit", num_labels=2),
                      ["cannot load model 'no-such-model-ftkit'", "minilm", "smollm2-135m-instruct"]),
    "model-empty": (lambda t: run(t, model=""), ["parameter 'model'"]),
    "model-encoder-as-lm": (lambda t: ftkit.load_causal_lm("tiny-bert"), ["is an encoder, not a causal LM"]),
    "dataset-unknown": (lambda t: run(t, dataset="imdb"), ["unknown dataset 'imdb'", "sms-spam", "csv/tsv/json/jsonl"]),
    "dataset-not-a-name": (lambda t: ftkit.load_dataset(3), ["parameter 'dataset' must be"]),
    "dataset-without-labels": (lambda t: lm.load_task("wikipedia", profiles.PROFILES["smoke"]), ["has no labels"]),
    "method-unknown": (lambda t: methods.config("adapter", classifier()),
                       ["unknown method 'adapter'", "lora, p-tuning, prefix-tuning, prompt-tuning"]),
    "method-option-unknown": (lambda t: methods.config("lora", classifier(), rank=8), ["has no option 'rank'"]),
    "method-model-cannot-take": (lambda t: methods.config("prefix-tuning", classifier(), num_virtual_tokens=4),
                                 ["'prefix-tuning' needs a causal LM", "use 'lora'"]),
    "schedule-unknown": (lambda t: schedules.check("step"), ["unknown schedule 'step'", "cosine"]),
    "early-stopping-mode": (lambda t: EarlyStopping(mode="up"), ["mode must be 'min' or 'max'"]),
    "lr-string": (lambda t: run(t, lr="abc"), ["parameter 'lr' must be a number, got 'abc'", "e.g. -p lr 2e-4"]),
    "lr-negative": (lambda t: run(t, lr=-1), ["parameter 'lr' must be > 0", "got -1.0"]),
    "lora_r-zero": (lambda t: run(t, lora_r=0), ["parameter 'lora_r' must be >= 1"]),
    "epochs-float": (lambda t: run(t, epochs=2.5), ["parameter 'epochs' must be an integer", "2.5"]),
    "seed-bool": (lambda t: run(t, seed=True), ["parameter 'seed' must be an integer"]),
    "seed-negative": (lambda t: run(t, seed=-1), ["parameter 'seed' must be >= 0"]),
    "dropout-one": (lambda t: params.check("dropout", 1.0), ["parameter 'dropout' must be >= 0 and < 1"]),
    "output_dir-not-a-path": (lambda t: run(t, output_dir=5), ["parameter 'output_dir' must be a folder path"]),
    "output_dir-finished": (finished, ["already holds a finished run", "give a new output_dir"]),
    "processes-zero": (lambda t: launch.command("train.py", 0), ["processes must be a whole number of at least 1"]),
    "processes-string": (lambda t: run(t, processes="two"), ["parameter 'processes' must be an integer"]),
    "script-missing": (lambda t: launch.run(t / "train.py", 2), ["train.py' does not exist", "write it first"]),
    "script-fails": (failing_script, ["train.py on 1 process(es) failed", "ValueError: column review not found"]),
    "batch-does-not-split": (lambda t: launch.per_process_batch(30, 4),
                             ["effective batch 30 does not split over 4", "a multiple of 4"]),
    "no-chat-template": (lambda t: sft.prompt_text(ftkit.load_tokenizer("tiny-bert"), "hi"),
                         ["has neither a chat template nor an end-of-sequence token", "smollm2-135m-instruct"]),
    "saved-model-missing": (lambda t: export.answer_in_fresh_process(t, "hi"), ["did not load in a fresh process"]),
    "labels-beyond-the-head": (labels_beyond_the_head,
                               ["the data has labels 0..4 but the model has 2 classes", "num_labels=5"]),
    "labels-beyond-the-head-scoring": (lambda t: labels_beyond_the_head(t, scoring=True),
                                       ["but the model has 2 classes", "num_labels="]),
}


@pytest.mark.parametrize("case", CASES)
def test_mistake_ends_in_one_line_naming_problem_and_fix(case, tmp_path):
    call, words = CASES[case]
    message = one_line_error(lambda: call(tmp_path))
    for word in words:
        assert word in message, message


LATIN1 = b"text,label\n" + b"caf\xe9,1\n" * 20
JSONL = "".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(6))

# (file name, content or None for a missing file, words): data files; every message also names the file
FILES = {
    "missing-file": ("missing.csv", None, ["does not exist"]),
    "empty-file": ("empty.csv", b"", ["is empty"]),
    "blank-lines": ("blank.csv", "\n\n\n", ["has no rows"]),
    "header-only": ("header.csv", "text,label\n", ["has no rows"]),
    "missing-columns": ("cols.csv", rows(20).replace("text,label", "body,category"),
                        ["lacks a 'text' column", "it has body, category"]),
    "missing-text-column": ("words.csv", rows(20).replace("text,", "words,"), ["lacks a 'text' column", "words, label"]),
    "not-utf8-csv": ("latin1.csv", LATIN1, ["is not UTF-8", "re-save it as UTF-8"]),
    "not-utf8-jsonl": ("latin1.jsonl", b'{"text": "caf\xe9", "label": 1}\n' * 20, ["is not UTF-8"]),
    "malformed-jsonl-line-3": ("bad.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": oops}\n', ["is malformed", "line 3 is not valid JSON"]),
    "malformed-jsonl-line-7": ("bad7.jsonl", JSONL + '{"text": "t6", "label": 0\n', ["line 7 is not valid JSON"]),
    "malformed-json-list": ("broken.json", '[{"text": "a", "label": 1},\n {"text": "b", "label": 0},\n',
                            ["is malformed"]),
    "malformed-csv-line-22": ("ragged.csv", rows(20) + "a,b,c\n", ["is malformed", "line 22"]),
    "labels-not-from-0": ("ints.csv", rows(20, labels=(1, 2)), ["integer labels must be 0..1", "got 1, 2"]),
    "labels-with-gap": ("gap.csv", rows(30, labels=(0, 1, 3)), ["integer labels must be 0..2", "got 0, 1, 3"]),
    "too-few-examples": ("few.csv", rows(9), ["has 9 complete examples", "at least 10"]),
}


@pytest.mark.parametrize("case", FILES)
def test_bad_data_file_ends_in_one_line_naming_file_problem_and_fix(case, tmp_path):
    name, content, words = FILES[case]
    path = str(tmp_path / name) if content is None else write(tmp_path, name, content)
    message = one_line_error(lambda: ftkit.load_dataset(path))
    assert repr(path) in message
    for word in words:
        assert word in message, message


def test_the_same_files_stop_a_notebook_run_before_it_starts(tmp_path):
    """Experiment reads a user's file when it is constructed: a bad file stops the notebook in its first cell."""
    path = write(tmp_path, "few.csv", rows(9))
    assert "has 9 complete examples" in one_line_error(lambda: run(tmp_path, dataset=path))
    assert not (tmp_path / "run").exists()


def test_peft_itself_still_fails_late_on_prefix_tuning_for_a_classifier():
    """Why methods.config refuses it: peft accepts the config and fails only at the first forward pass. When
    a peft release supports it, this test fails and the refusal can go."""
    from peft import PrefixTuningConfig, TaskType, get_peft_model
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    net = get_peft_model(model, PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=4))
    with pytest.raises(Exception, match="past key values"):
        net(**tok(["a message"], return_tensors="pt"))


TAKES = [(m, model) for model in ["tiny-bert", "tiny-llama"] for m in sorted(methods.METHODS)
         if (m, model) != ("prefix-tuning", "tiny-bert")]  # refused above


@pytest.mark.parametrize("method, model", TAKES)
def test_every_method_the_model_can_take_wraps_and_runs(method, model):
    base, tok = (ftkit.load_classifier(model, num_labels=2) if model == "tiny-bert" else ftkit.load_causal_lm(model))
    options = {"r": 2} if method == "lora" else {"num_virtual_tokens": 4}
    if method == "lora" and model == "tiny-bert":
        options["target_modules"] = ["query", "value"]
    net = methods.wrap(base, method, **options)
    assert 0 < ftkit.count_params(net)[0] < ftkit.count_params(net)[1]
    assert net(**tok(["a message"], return_tensors="pt")).logits.shape[0] == 1
