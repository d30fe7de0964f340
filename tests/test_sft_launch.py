"""ftkit.sft and ftkit.launch on the tiny models, in seconds: the prompt mask, the merged copy, the launcher's
command, batch split and accelerate configs. Notebooks 12 and 13 run them end to end."""
import contextlib
import sys

import datasets
import pytest
import torch
from accelerate.commands.config.config_args import load_config_from_file
from peft import LoraConfig, get_peft_model
from trl import SFTConfig

import ftkit
from ftkit import batching, export, launch, sft

PAIRS = datasets.Dataset.from_dict({"prompt": ["What is the capital of France?", "hi"],
                                    "response": ["Paris.", "Hello! How are you?"]})


@pytest.fixture(scope="module")
def tok():
    return ftkit.load_tokenizer("tiny-llama")


def test_encode_puts_the_loss_on_the_response_and_its_end_of_turn_only(tok):
    encoded = sft.encode(PAIRS, tok)
    for row, pair in zip(encoded, PAIRS):
        kept = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
        assert tok.decode(kept) == pair["response"] + tok.eos_token
        prompt = tok(sft.prompt_text(tok, pair["prompt"]), add_special_tokens=False)["input_ids"]
        assert row["input_ids"][:len(prompt)] == prompt and set(row["labels"][:len(prompt)]) == {-100}
        assert len(row["input_ids"]) == len(prompt) + len(kept)


def test_conversations_are_trl_prompt_completion_messages():
    row = sft.conversations(PAIRS)[0]
    assert row == {"prompt": [{"role": "user", "content": "What is the capital of France?"}],
                   "completion": [{"role": "assistant", "content": "Paris."}]}


def test_merged_is_a_plain_copy_and_the_adapter_stays(tok):
    torch.manual_seed(0)
    base, _ = ftkit.load_causal_lm("tiny-llama")
    lora = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in lora.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapter change the output
            torch.nn.init.normal_(p, std=0.02)
    ids = tok(["a prompt"], return_tensors="pt")
    with torch.inference_mode():
        before = lora(**ids).logits
        merged = export.merged(lora)
        assert not any("lora" in n for n, _ in merged.named_parameters())
        assert torch.allclose(merged(**ids).logits, before, atol=1e-5)
        assert torch.equal(lora(**ids).logits, before)  # the adapter model is untouched
    assert ftkit.count_params(lora)[0] == sum(p.numel() for n, p in lora.named_parameters() if "lora_" in n)


@pytest.mark.parametrize("accumulated", [None, 40])
def test_sft_trainer_loss_on_cpu_is_trls(tok, tmp_path, accumulated):
    """The same loss and gradients as trl's fused head, alone and as one micro-batch of an accumulated step."""
    torch.manual_seed(0)
    model, _ = ftkit.load_causal_lm("tiny-llama")
    config = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, report_to="none", use_cpu=True,
                       save_strategy="no")
    lora = LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = sft.SFTTrainer(model=model, args=config, processing_class=tok, peft_config=lora,
                             train_dataset=sft.conversations(PAIRS))
    batch = next(iter(trainer.get_train_dataloader()))
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()
    grads = []
    for compute_loss in (trainer.compute_loss, super(sft.SFTTrainer, trainer).compute_loss):
        loss = compute_loss(trainer.model, dict(batch), num_items_in_batch=accumulated)
        loss.backward()
        grads.append({**batching.gradients(trainer.model), "loss": loss.detach()})
        trainer.model.zero_grad()
    ours, trls = grads
    assert ours.keys() == trls.keys() and len(ours) > 1
    for name in ours:
        assert torch.allclose(ours[name], trls[name], rtol=1e-4, atol=1e-6), name


def test_sft_trainer_steps_run_inside_no_cudnn_attention_on_the_trainers_device(tok, tmp_path, monkeypatch):
    entered = []

    @contextlib.contextmanager
    def recording(device):
        entered.append(device)
        yield
    monkeypatch.setattr(sft.runtime, "no_cudnn_attention", recording)
    config = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, report_to="none", use_cpu=True,
                       save_strategy="no", max_steps=2)
    trainer = sft.SFTTrainer(model=ftkit.load_causal_lm("tiny-llama")[0], args=config, processing_class=tok,
                             train_dataset=sft.conversations(PAIRS))
    trainer.train()
    assert entered == [trainer.args.device] * 2


def test_qlora_needs_cuda_here():
    assert "CUDA GPU" in sft.quantized_training(torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the launcher is accelerate launch")
def test_cpu_launch_is_torchrun_on_loopback():
    cmd = launch.command("train.py", 2, ["--lr", 1e-4])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2" and cmd[cmd.index("--master_addr") + 1] == "127.0.0.1"
    assert cmd[-3:] == ["train.py", "--lr", "0.0001"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the launcher is accelerate launch")
def test_one_cpu_process_needs_no_launcher():
    assert launch.command("train.py", 1, ["--lr", 1e-4]) == [sys.executable, "train.py", "--lr", "0.0001"]


@pytest.mark.parametrize("processes, accumulate, share", [(1, 1, 32), (2, 1, 16), (8, 1, 4), (8, 2, 2), (4, 8, 1)])
def test_per_process_batch_keeps_the_effective_batch(processes, accumulate, share):
    assert launch.per_process_batch(32, processes, accumulate) == share


def test_configs_load_in_accelerate(tmp_path):
    paths = launch.write_configs(tmp_path, processes=4)
    kinds = {name: load_config_from_file(str(path)) for name, path in paths.items()}
    assert {n: str(c.distributed_type) for n, c in kinds.items()} == {
        "1gpu": "DistributedType.NO", "ddp": "DistributedType.MULTI_GPU", "fsdp": "DistributedType.FSDP"}
    assert kinds["ddp"].num_processes == 4 and kinds["1gpu"].num_processes == 1
    assert kinds["fsdp"].fsdp_config["fsdp_version"] == 2
