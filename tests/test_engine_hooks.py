"""What the engine's ``train.fit`` offers the notebooks built on it, each on a real peft method or a tiny
model: the task read from the loader or given, a pluggable loss that keeps a model's own extra terms
(AdaLoRA's orthogonality penalty), a per-step hook that sees the gradients (AdaLoRA's budget update), a
ready optimizer (LoRA+), and peak memory per block rather than per process."""
import resource

import peft
import pytest
import torch
from peft.optimizers import create_loraplus_optimizer
from torch.utils.data import DataLoader

import ftkit
from ftkit import lm, losses, runtime, train
from ftkit.platform.errors import FtkitError
from ftkit.platform.profiles import PROFILES

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sms():
    ds, words, instruction = lm.load_task("sms-spam", PROFILES["smoke"])
    return ds, words, instruction


def tiny_llama(seed=0):
    runtime.seed_everything(seed)
    return ftkit.load_causal_lm("tiny-llama")


def encoded(sms, tok):
    ds, words, instruction = sms
    return lm.encode(ds["train"], tok, instruction, words)


def adalora(model, total_step):
    config = peft.AdaLoraConfig(init_r=8, target_r=2, tinit=1, tfinal=1, deltaT=1, total_step=total_step,
                                target_modules=["q_proj", "v_proj"], orth_reg_weight=0.5, task_type="CAUSAL_LM")
    return peft.get_peft_model(model, config)


def test_the_task_comes_from_the_loader_or_the_argument(sms):
    model, tok = tiny_llama()
    data = encoded(sms, tok)
    assert lm.loader(data, tok, batch_size=8).task == "causal-lm"
    assert lm.loader(data, tok, batch_size=8, pack=True).task == "causal-lm"
    own = DataLoader(data, batch_size=8, collate_fn=lm.loader(data, tok, batch_size=8).collate_fn)
    with pytest.raises(FtkitError, match="pass fit\\(task=...\\) for a DataLoader of your own"):
        train.fit(model, tok, own, epochs=1, lr=1e-3, batch_size=8, device=CPU, log=False)
    history = train.fit(model, tok, own, task="causal-lm", epochs=1, lr=1e-3, batch_size=8, device=CPU, log=False)
    assert len(history[0]["step_losses"]) == len(own)


def test_model_loss_keeps_adaloras_orthogonality_term_that_label_loss_drops(sms):
    model, tok = tiny_llama()
    net = adalora(model, total_step=10)
    batch = next(iter(lm.loader(encoded(sms, tok), tok, batch_size=8, shuffle=False)))
    net.train()
    with torch.no_grad():
        own, labelled = losses.model_loss(net, batch).item(), losses.label_loss(net, batch).item()
    assert own - labelled > 0.1  # 0.5 x the summed Frobenius norms of A A^T - I and B^T B - I


def test_on_step_sees_every_step_with_its_gradients_and_adalora_reallocates_its_budget(sms):
    model, tok = tiny_llama()
    batches = lm.loader(encoded(sms, tok), tok, batch_size=8)
    total = 3 * len(batches)
    net = adalora(model, total_step=total)
    seen = []

    def on_step(step):
        seen.append((step, any(p.grad is not None for p in net.parameters() if p.requires_grad)))
        net.base_model.update_and_allocate(step)
    train.fit(net, tok, batches, epochs=3, lr=5e-3, batch_size=8, device=CPU, loss=losses.model_loss,
              on_step=on_step, log=False)
    assert seen == [(i, True) for i in range(total)]
    ranks = net.peft_config["default"].rank_pattern
    assert ranks is not None and sum(sum(r) for r in ranks.values()) < 8 * len(ranks)  # ranks were pruned


def test_a_ready_optimizer_lora_plus_trains_with_its_own_rates(sms):
    model, tok = tiny_llama()
    net = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                     task_type="CAUSAL_LM"))
    opt = create_loraplus_optimizer(net, optimizer_cls=torch.optim.AdamW, lr=1e-3, loraplus_lr_ratio=16)
    rates = sorted({g["lr"] for g in opt.param_groups if g["params"]})  # A at lr, B at 16 x lr
    assert rates == [1e-3, 16e-3]
    before = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}
    train.fit(net, tok, lm.loader(encoded(sms, tok), tok, batch_size=8), optimizer=opt, epochs=1,
              batch_size=8, device=CPU, warmup=0.0, schedule="constant", log=False)
    assert sorted({g["lr"] for g in opt.param_groups if g["params"]}) == rates  # the schedule kept both rates
    changed = [n for n, p in net.named_parameters() if p.requires_grad and not torch.equal(before[n], p)]
    assert any("lora_B" in n for n in changed) and any("lora_A" in n for n in changed)


def test_fit_without_a_rate_or_optimizer_says_so(sms):
    model, tok = tiny_llama()
    with pytest.raises(FtkitError, match="fit needs lr"):
        train.fit(model, tok, lm.loader(encoded(sms, tok), tok, batch_size=8), epochs=1, batch_size=8,
                  device=CPU, log=False)


def test_peak_memory_is_per_block_not_per_process():
    def hold(mb):
        with runtime.PeakMemory(CPU, interval=0.001) as peak:
            block = torch.ones(mb * 2**18)  # float32: mb MiB
            block.add_(1)  # touched, so resident
            import time
            time.sleep(0.05)
            del block
        return peak.mb
    big = hold(600)
    small = hold(50)
    process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert big - small > 400  # two blocks in one process compare
    assert process >= big - 1  # where the process-wide peak would give the big block's figure for both
