"""Training speed: the same model on the same data, four ways, in one run.

    python benchmarks/train_speed.py                   # both workloads on the built-in models (2 cores: 19 min fp32)
    python benchmarks/train_speed.py --workload minilm --train 500
    python benchmarks/train_speed.py --profile smoke   # tiny random models: checks that every way runs
    python benchmarks/train_speed.py --profile gpu     # on a CUDA GPU: bf16, 8x the training examples

Workloads: MiniLM full fine-tuning on tweet sentiment (3 classes), and SmolLM2-135M-Instruct with LoRA
(r=8 on q,v) learning SMS spam labels as words. Ways, each with the same hyperparameters and data:

1. ``plain``: a plain PyTorch loop, fp32, every example padded to max_length (128, or the longest example), shuffled
   batches;
2. ``trainer``: ``transformers.Trainer`` with its defaults (fp32, dynamic padding);
3. ``trainer-best``: Trainer as well as it allows on this hardware: length-grouped batches, and bf16 on a GPU
   or where the CPU has bf16 units (AMX or AVX512-BF16; elsewhere bf16 matmuls run ~100x slower than fp32);
4. ``ftkit``: ``ftkit.train.fit``, the path the notebooks use: length-bucketed batches for MiniLM
   (``train.loader``), shuffled batches packed into rows for SmolLM2 (``lm.loader(pack=True)``, notebook 04).

Three more ways on request (``--ways ftkit ftkit-fp32 ftkit-grouped trainer-ftkit``): ``ftkit-fp32``, the same
path without bf16 (the numerics reference); for the causal LM ``ftkit-grouped``, length-grouped batches, unpacked
(``lm.loader``'s default; SMS batches grouped by length lean to one class, which costs accuracy); and
``trainer-ftkit``, ``transformers.Trainer`` with ftkit's batches, loss, bf16 frozen weights and dropout plugged in
(could Trainer host the engine instead of ftkit's own loop?).

Each way runs in its own process (so peak memory is its own: RSS on CPU, torch's peak allocation on a GPU).
Reported: real (non-pad) tokens per second, seconds per step, peak memory, achieved FLOP/s as a share of the
matmul peak measured here first (bf16 on a GPU and where the CPU has bf16 units, else fp32: the precision the
fast path computes in), and the test accuracy reached (fp32 evaluation for all ways). Attention, in every way:
SDPA for MiniLM (ftkit's dropout writes SDPA's arithmetic out, see ftkit/engine/dropout.py), and for SmolLM2
what ``ftkit.load_causal_lm`` picks: eager on a CPU, where SDPA's backward is slower, SDPA on a GPU; there ftkit's
bf16 blocks alone keep SDPA off cuDNN's kernel (``runtime.no_cudnn_attention``), Trainer best's do not. Peak memory
is training's, read before the evaluation. FLOPs per real token: 6 x the transformer's weight matrices that
train and 4 x those that are frozen (forward, input gradients, weight gradients), without the output layer over
the vocabulary and without attention scores; a count of useful work, not of work done.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time

import torch

from ftkit.platform.profiles import get_profile
from ftkit.platform.runtime import bf16_supported, get_device

WAYS = ("plain", "trainer", "trainer-best", "ftkit")
MORE_WAYS = ("ftkit-fp32", "ftkit-grouped", "trainer-ftkit")  # with --ways (module docstring)
WORKLOADS = {  # model (cpu profile), model (smoke profile), lr, batch size, epochs, training examples
    "minilm": dict(model="minilm", tiny="tiny-bert", lr=1e-4, batch_size=32, epochs=1, train=1000),
    "smollm2": dict(model="smollm2-135m-instruct", tiny="tiny-llama", lr=2e-3, batch_size=16, epochs=1, train=320),
}
MAX_LENGTH = 128
GPU_SCALE = 8  # the gpu profile trains on 8x the examples: one epoch of the cpu sizes is a few seconds there


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock read after it counts it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype, n: int = 2048, repeat: int = 20, device=torch.device("cpu")) -> float:
    """FLOP/s of an n x n matmul in ``dtype`` on ``device`` (the best of three timings)."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    synchronize(device)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 * repeat / best


def flops_per_token(model) -> float:
    """6 x trained + 4 x frozen weights of the linear layers, the output layer over the vocabulary left out."""
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    total = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not out and module.weight.shape[0] < 30000:
            total += (6 if module.weight.requires_grad else 4) * module.weight.numel()
    return total


def setup(workload: str, profile_name: str, n_train: int, device: torch.device):
    """(model, tokenizer, train examples ready for the loss, test set, evaluate(model) -> accuracy)."""
    import ftkit
    from ftkit import lm, train
    w = WORKLOADS[workload]
    profile = get_profile(profile_name)
    name = w["model"] if profile.real_models else w["tiny"]
    if workload == "minilm":
        ds = ftkit.data.load_dataset("tweet-sentiment", max_train=n_train, max_eval=400)
        model, tok = ftkit.load_classifier(name, num_labels=3)
        examples = train.tokenize(ds["train"], tok, MAX_LENGTH).rename_column("label", "labels")

        def accuracy(net):
            return train.evaluate(net, tok, ds["test"], device=device, bf16=False)["accuracy"]
        return model, tok, examples, accuracy
    from peft import LoraConfig, TaskType, get_peft_model
    ds, words, instruction = lm.load_task("sms-spam", profile, max_train=n_train, max_eval=200)
    model, tok = ftkit.load_causal_lm(name)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, target_modules=["q_proj", "v_proj"]))
    examples = lm.encode(ds["train"], tok, instruction, words)

    def accuracy(net):
        scores = lm.verbalizer_logits(net, tok, ds["test"], instruction, words, device=device, bf16=False)
        return float((scores.argmax(-1) == torch.tensor(ds["test"]["label"]).numpy()).mean())
    return model, tok, examples, accuracy


def collator(tok, workload, **padding):
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding
    if workload == "minilm":
        return DataCollatorWithPadding(tok, **padding)
    return DataCollatorForSeq2Seq(tok, label_pad_token_id=-100, **padding)


def run_plain(model, tok, examples, w, workload, device):
    """fp32, every batch padded to max_length, shuffled: what a first loop looks like."""
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup
    longest = max(MAX_LENGTH, *(len(ids) for ids in examples["input_ids"]))  # a prompt may run past 128
    loader = DataLoader(examples, batch_size=w["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(0),
                        collate_fn=collator(tok, workload, padding="max_length", max_length=longest))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=w["lr"], weight_decay=0.01)
    steps = w["epochs"] * len(loader)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(0.1 * steps), steps)
    model.train()
    padded = 0
    for _ in range(w["epochs"]):
        for batch in loader:
            model(**{k: v.to(device) for k, v in batch.items()}).loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            padded += batch["input_ids"].numel()
    return steps, padded


def train_with(trainer_class, model, tok, examples, w, workload, device, around=contextlib.nullcontext,
               **extra) -> int:
    """Train with ``trainer_class`` (Trainer or a subclass) at the workload's hyperparameters, ``trainer.train()``
    inside ``around()``; returns its step count."""
    from transformers import TrainingArguments
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=w["batch_size"], num_train_epochs=w["epochs"],
                                 learning_rate=w["lr"], weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0,
                                 use_cpu=device.type == "cpu", report_to="none", save_strategy="no",
                                 logging_strategy="no", disable_tqdm=True, seed=0, **extra)
        trainer = trainer_class(model=model, args=args, train_dataset=examples,
                                data_collator=collator(tok, workload), processing_class=tok)
        with around():
            trainer.train()
        return trainer.state.global_step


def run_trainer(model, tok, examples, w, workload, device, best: bool):
    from transformers import Trainer
    extra = dict(bf16=bf16_supported(device), train_sampling_strategy="group_by_length") if best else {}
    return train_with(Trainer, model, tok, examples, w, workload, device, **extra), None


def run_ftkit(model, tok, examples, w, workload, device, bf16=True, pack=True):
    from ftkit import train

    # a new loader draws the same first epoch: the one counted is the one trained on
    padded = w["epochs"] * sum(b["input_ids"].numel() for b in ftkit_batches(tok, examples, w, workload, pack))
    history = train.fit(model, tok, ftkit_batches(tok, examples, w, workload, pack), epochs=w["epochs"], lr=w["lr"], batch_size=w["batch_size"],
                        device=device, log=False, bf16=bf16)
    return len(history[0]["step_losses"]) * w["epochs"], padded


def ftkit_batches(tok, examples, w, workload, pack=True):
    """ftkit's training batches: length buckets for MiniLM, shuffled and packed rows for SmolLM2."""
    from ftkit import lm, train
    if workload == "minilm":
        return train.loader(examples.rename_column("labels", "label"), tok, w["batch_size"], shuffle=True)
    return lm.loader(examples, tok, w["batch_size"], pack=pack)


def run_trainer_ftkit(model, tok, examples, w, workload, device):
    """transformers.Trainer with ftkit's pieces plugged in: its batches (``get_train_dataloader``), its loss
    (``compute_loss``: ``losses.label_loss`` for the causal LM), bf16 autocast, and its frozen bf16 weights and
    cheap dropout around ``train()``: could Trainer host the engine instead of ftkit's own loop?"""
    from transformers import Trainer

    from ftkit import losses
    from ftkit.engine.dropout import fast_dropout
    from ftkit.platform.runtime import bf16_frozen_weights

    batches = ftkit_batches(tok, examples, w, workload)
    padded = w["epochs"] * sum(b["input_ids"].numel() for b in ftkit_batches(tok, examples, w, workload))

    class Plugged(Trainer):
        def get_train_dataloader(self):
            return batches

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if workload == "minilm" or return_outputs:
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            return losses.label_loss(model, inputs)  # no accumulation here: the batch's mean is the step's
    def around():
        stack = contextlib.ExitStack()
        stack.enter_context(bf16_frozen_weights(model, device))
        stack.enter_context(fast_dropout(model, device))
        return stack
    return train_with(Plugged, model, tok, examples, w, workload, device, around=around,
                      bf16=bf16_supported(device)), padded


def one(workload: str, way: str, profile: str, n_train: int | None) -> dict:
    """One way on one workload, in this process."""
    import ftkit
    w = {**WORKLOADS[workload], **({"train": n_train} if n_train else {})}
    if profile == "gpu" and not n_train:
        w["train"] *= GPU_SCALE
    device = get_device(get_profile(profile))
    ftkit.runtime.seed_everything(0)
    model, tok, examples, accuracy = setup(workload, profile, w["train"], device)
    real = w["epochs"] * sum(len(ids) for ids in examples["input_ids"])
    run = {"plain": run_plain, "trainer": lambda *a: run_trainer(*a, best=False),
           "trainer-best": lambda *a: run_trainer(*a, best=True), "ftkit": run_ftkit,
           "ftkit-fp32": lambda *a: run_ftkit(*a, bf16=False),
           "ftkit-grouped": lambda *a: run_ftkit(*a, pack=False), "trainer-ftkit": run_trainer_ftkit}[way]
    synchronize(device)
    start = time.perf_counter()
    steps, padded = run(model, tok, examples, w, workload, device)
    synchronize(device)
    seconds = time.perf_counter() - start
    peak_mb = ftkit.runtime.peak_memory_mb(device)  # before the evaluation: training's peak
    return {"workload": workload, "way": way, "model": type(model).__name__, "steps": steps, "seconds": seconds,
            "real_tokens": real, "padded_tokens": padded, "flops_per_token": flops_per_token(model),
            "accuracy": accuracy(model), "peak_mb": peak_mb}


def table(rows: list[dict], peak: float, peak_dtype: str = "bf16") -> str:
    lines = ["| workload | way | tokens/s | x plain | x trainer | x trainer-best | s/step | padding | peak MB "
             f"| % {peak_dtype} peak | test acc |", "|" + "---|" * 11]
    for r in rows:
        base = {x["way"]: x["real_tokens"] / x["seconds"] for x in rows if x["workload"] == r["workload"]}
        speed = r["real_tokens"] / r["seconds"]
        ratio = lambda way: f"{speed / base[way]:.2f}" if way in base else "-"  # noqa: E731
        pad = f"{1 - r['real_tokens'] / r['padded_tokens']:.0%}" if r["padded_tokens"] else "-"
        share = speed * r["flops_per_token"] / peak
        lines.append(f"| {r['workload']} | {r['way']} | {speed:,.0f} | {ratio('plain')} | {ratio('trainer')} | "
                     f"{ratio('trainer-best')} | {r['seconds'] / r['steps']:.2f} | {pad} | {r['peak_mb']:,.0f} | "
                     f"{share:.1%} | {r['accuracy']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--ways", nargs="+", choices=WAYS + MORE_WAYS, default=list(WAYS))
    parser.add_argument("--profile", choices=["cpu", "smoke", "gpu"], default="cpu")
    parser.add_argument("--train", type=int, default=None, help="training examples (default: per workload)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a child process: one measurement, printed as the last line
        print(json.dumps(one(*args.one, args.profile, args.train)))
        return []
    if args.profile == "gpu" and not torch.cuda.is_available():
        sys.exit("error: --profile gpu needs a CUDA GPU and torch sees none here: use --profile cpu (or smoke)")
    device = get_device(get_profile(args.profile))
    n = {"cpu": 2048, "smoke": 256, "gpu": 8192}[args.profile]  # smoke: the code path, not the speed
    peak_dtype = "bf16" if bf16_supported(device) else "fp32"  # without bf16 units the fast path is fp32
    fp32_peak = matmul_peak(torch.float32, n, device=device)
    bf16_peak = matmul_peak(torch.bfloat16, n, device=device) if peak_dtype == "bf16" else None
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"matmul {n}x{n} on {where}: fp32 {fp32_peak / 1e9:,.0f} GFLOP/s, " + (
          f"bf16 {bf16_peak / 1e9:,.0f} GFLOP/s" if bf16_peak else "bf16 not measured: this CPU has no bf16 units"),
          flush=True)
    rows = []
    for workload in WORKLOADS if args.workload == "all" else [args.workload]:
        for way in args.ways:
            command = [sys.executable, __file__, "--one", workload, way, "--profile", args.profile]
            done = subprocess.run(command + (["--train", str(args.train)] if args.train else []),
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{workload} / {way} failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{workload:8} {way:13} {r['real_tokens'] / r['seconds']:8,.0f} tokens/s  {r['seconds']:6.1f} s  "
                  f"acc {r['accuracy']:.3f}", flush=True)
    print(table(rows, bf16_peak or fp32_peak, peak_dtype))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fp32_peak": fp32_peak, "bf16_peak": bf16_peak, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
