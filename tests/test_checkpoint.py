"""Checkpoints: atomic writes, exact resume after SIGKILL, and the same numbers from the same seed on CPU."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import ftkit
from ftkit import checkpoint, train
from ftkit.lessons.early_stopping import EarlyStopping
from ftkit.platform.errors import FtkitError

JOB = [sys.executable, "tests/resume_job.py"]
CPU = torch.device("cpu")


def _setup(steps=2):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + s))
    for _ in range(steps):
        model(torch.randn(3, 4)).sum().backward()
        opt.step(), sched.step(), opt.zero_grad()
    return model, opt, sched


def _same_state(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_round_trip_restores_weights_optimizer_schedule_and_random_states(tmp_path):
    model, opt, sched = _setup()
    checkpoint.save(tmp_path, model=model, optimizer=opt, scheduler=sched, state={"step": 2, "note": "x"})
    expected_draw = torch.rand(3)
    fresh, fresh_opt, fresh_sched = _setup(steps=0)
    state, extra = checkpoint.load(tmp_path, model=fresh, optimizer=fresh_opt, scheduler=fresh_sched)
    assert state == {"step": 2, "note": "x"} and extra == {}
    assert _same_state(model, fresh)
    assert fresh_sched.last_epoch == 2 and fresh_opt.state_dict()["state"][0]["step"] == 2
    assert torch.equal(torch.rand(3), expected_draw)  # the random stream continues where it was saved
    assert (tmp_path / "latest").read_text() == "step-0000002"


def test_a_crash_during_a_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, sched = _setup()
    checkpoint.save(tmp_path, model=model, optimizer=opt, scheduler=sched, state={"step": 2})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)

    def dies_half_way(obj, path, *args, **kwargs):  # the optimizer file half written, then the process dies
        open(path, "wb").write(b"\x80\x02partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(checkpoint.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, model=model, optimizer=opt, scheduler=sched, state={"step": 3})
    monkeypatch.undo()
    assert (tmp_path / "latest").read_text() == "step-0000002"
    fresh, fresh_opt, fresh_sched = _setup(steps=0)
    assert checkpoint.load(tmp_path, model=fresh, optimizer=fresh_opt, scheduler=fresh_sched)[0] == {"step": 2}
    assert all(torch.equal(saved[k], v) for k, v in fresh.state_dict().items())
    checkpoint.save(tmp_path, model=model, optimizer=opt, scheduler=sched, state={"step": 4})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-0000004"]  # the debris is gone


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    model, opt, sched = _setup(steps=0)
    assert checkpoint.load(tmp_path / "none", model=model, optimizer=opt, scheduler=sched) is None


def test_checkpoint_of_another_model_is_a_one_line_error(tmp_path):
    model, opt, sched = _setup()
    checkpoint.save(tmp_path, model=model, optimizer=opt, scheduler=sched, state={"step": 2})
    other = torch.nn.Linear(4, 2)
    o = torch.optim.AdamW(other.parameters())
    with pytest.raises(FtkitError, match="is for a different model") as info:
        checkpoint.load(tmp_path, model=other, optimizer=o, scheduler=torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1))
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def tiny_task():
    ds = ftkit.load_dataset("sms-spam", max_train=64, max_eval=32)
    return ds, ds["train"].features["label"].names


def _tiny_fit(tiny_task, folder, epochs=3, stopper=None):
    ds, labels = tiny_task
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=len(labels), labels=labels)
    history = train.fit(model, tok, ds["train"], epochs=epochs, lr=1e-3, batch_size=16, device=CPU, log=False,
                        eval_ds=ds["validation"], checkpoint_dir=folder, early_stopping=stopper)
    return model, history


def test_a_finished_run_resumes_to_its_end_without_training(tiny_task, tmp_path):
    model, history = _tiny_fit(tiny_task, tmp_path)
    again, history_again = _tiny_fit(tiny_task, tmp_path)
    assert history_again == history and _same_state(model, again)


def test_early_stopping_state_travels_with_the_checkpoint(tiny_task, tmp_path):
    stopper = EarlyStopping("val_loss", patience=5)
    model, history = _tiny_fit(tiny_task, tmp_path, stopper=stopper)
    resumed = EarlyStopping("val_loss", patience=5)
    _tiny_fit(tiny_task, tmp_path, stopper=resumed)
    assert (resumed.best, resumed.best_epoch, resumed.bad_epochs) == (stopper.best, stopper.best_epoch,
                                                                      stopper.bad_epochs)
    assert all(torch.equal(stopper.state[k], resumed.state[k]) for k in stopper.state)


def test_other_parameters_than_the_checkpoints_are_refused(tiny_task, tmp_path):
    _tiny_fit(tiny_task, tmp_path, epochs=1)
    with pytest.raises(FtkitError, match="is from a run of 4 steps, this one has 8"):
        _tiny_fit(tiny_task, tmp_path, epochs=2)


def _run(out, pause=0.0):
    proc = subprocess.run([*JOB, str(out), str(pause)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "result.json").read_text()), proc.stdout


def test_killed_run_resumes_to_the_same_metrics_and_same_seed_repeats_exactly(tmp_path):
    """SIGKILL mid-way through epoch 2, start again: the same per-step losses, validation and test metrics
    (exactly, not within a tolerance) as an uninterrupted run; and two uninterrupted runs agree exactly."""
    first, _ = _run(tmp_path / "a")
    second, _ = _run(tmp_path / "b")
    assert first == second, "the same seed on CPU gave different numbers"

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*JOB, str(killed), "0.3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest, deadline = killed / "checkpoints" / "latest", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text() >= "step-0000013":  # epoch 2, 3 steps in
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists()
    resumed, log = _run(killed)
    step = int(re.search(r"resumed from step (\d+) of 30", log).group(1))
    assert 13 <= step < 30
    assert resumed == first
