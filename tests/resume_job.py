"""A short training run that checkpoints as it goes, for the kill-and-resume test (tests/test_checkpoint.py).

    python tests/resume_job.py OUT_DIR [SECONDS_PER_STEP]

Trains the tiny BERT on 160 SMS messages for 3 epochs (10 steps each) with checkpoints every 3 steps in
OUT_DIR/checkpoints, resuming from them when they exist, and writes OUT_DIR/result.json. A pause per
training step (default 0) gives the test time to kill the run mid-way; it changes no number.
"""
import json
import sys
import time
from pathlib import Path

import torch

import ftkit
from ftkit import runtime, train

out = Path(sys.argv[1])
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0

runtime.seed_everything(0)
ds = ftkit.load_dataset("sms-spam", max_train=160, max_eval=64)
labels = ds["train"].features["label"].names
model, tok = ftkit.load_classifier("tiny-bert", num_labels=len(labels), labels=labels)
model.register_forward_pre_hook(lambda module, args: time.sleep(pause) if module.training else None)
history = train.fit(model, tok, ds["train"], epochs=3, lr=1e-3, batch_size=16, device=torch.device("cpu"), seed=0,
                    eval_ds=ds["validation"], checkpoint_dir=out / "checkpoints", checkpoint_every=3)
test = train.evaluate(model, tok, ds["test"], device=torch.device("cpu"))
(out / "result.json").write_text(json.dumps({"history": history, "test": test}))
