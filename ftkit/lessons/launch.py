"""Launching a training script on several processes: torchrun on CPU, ``accelerate launch`` on GPUs.

    launch.run("train.py", processes=2, args=["--out", "runs/ddp2"])   # torchrun, gloo, on this CPU
    launch.write_configs("configs/", processes=8)                       # accelerate configs: 1 GPU, DDP, FSDP

The engine is PyTorch's (torch.distributed: DDP, FSDP) driven by accelerate; this file only picks the launcher
and its arguments. On CPU, ``accelerate launch --cpu --num_processes 2`` starts ONE process (its CPU path
spreads processes only through MPI with a hostfile), so CPU runs go through ``torchrun``, which is what
``accelerate launch --multi_gpu`` itself runs (and which then forms a gloo group even without GPUs).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import torch

from ..platform.errors import FtkitError


def free_port() -> int:
    """A free TCP port on loopback for the processes' rendezvous (two runs at once must not share one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(script, processes: int, args=(), config_file=None) -> list[str]:
    """The launch command: ``accelerate launch`` with a config on GPUs, else ``torchrun`` on CPU (a single CPU
    process runs as a plain ``python script``)."""
    if not isinstance(processes, int) or processes < 1:
        raise FtkitError(f"processes must be a whole number of at least 1, got {processes!r}")
    port = str(free_port())
    if torch.cuda.is_available():
        cfg = ["--config_file", str(config_file)] if config_file else (
            ["--multi_gpu"] if processes > 1 else [])
        return [sys.executable, "-m", "accelerate.commands.launch", *cfg, "--num_processes", str(processes),
                "--main_process_port", port, str(script), *map(str, args)]
    if processes == 1:  # one CPU process has no group to form: torchrun would only add its own start-up
        return [sys.executable, str(script), *map(str, args)]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", port, str(script), *map(str, args)]


def run(script, processes: int, args=(), config_file=None, log=None) -> subprocess.CompletedProcess:
    """Run ``script`` on ``processes`` processes and wait; its output goes to ``log`` (a file) if given.
    A failure raises one line: the last line the script printed to stderr."""
    if not Path(script).is_file():
        raise FtkitError(f"training script {str(script)!r} does not exist: write it first")
    # gloo finds its network interface from the host name, which fails on some machines: use loopback
    env = {**os.environ, "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo"),
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command(script, processes, args, config_file), env=env, capture_output=True, text=True)
    if log is not None:
        Path(log).write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        # the script's own exception, not torchrun's summary of the failure printed after it
        errors = [e for e in re.findall(r"^[\w.]*(?:Error|Exception|Interrupt)\b.*$", done.stderr, re.M)
                  if not e.startswith("torch.distributed")]
        raise FtkitError(f"{Path(script).name} on {processes} process(es) failed: "
                         f"{errors[-1] if errors else f'exit status {done.returncode}'}"
                         + (f" (the whole output is in {log})" if log else ""))
    return done


# accelerate config files (the keys `accelerate config` writes) for the three set-ups a reader meets.
CONFIGS = {
    "1gpu": {"distributed_type": "NO", "num_processes": 1},
    "ddp": {"distributed_type": "MULTI_GPU"},
    "fsdp": {"distributed_type": "FSDP", "fsdp_config": {
        "fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "fsdp_reshard_after_forward": True,
        "fsdp_state_dict_type": "SHARDED_STATE_DICT", "fsdp_cpu_ram_efficient_loading": True}},
}


def write_configs(folder, processes: int, mixed_precision: str = "bf16") -> dict[str, Path]:
    """One accelerate config file per set-up (1 GPU, DDP on ``processes`` GPUs, FSDP sharded over them),
    for ``accelerate launch --config_file <file> train.py``. Returns {name: path}."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, keys in CONFIGS.items():
        config = {"compute_environment": "LOCAL_MACHINE", "machine_rank": 0, "num_machines": 1,
                  "num_processes": processes, "mixed_precision": mixed_precision, "main_training_function": "main",
                  "use_cpu": False, **keys}
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


def per_process_batch(effective_batch: int, processes: int, accumulate: int = 1) -> int:
    """The batch each process takes per micro-step so that processes x accumulate x it = ``effective_batch``."""
    share, rest = divmod(effective_batch, processes * accumulate)
    if rest or share == 0:
        raise FtkitError(f"effective batch {effective_batch} does not split over {processes} process(es) x "
                         f"{accumulate} accumulation step(s): choose a multiple of {processes * accumulate}")
    return share
