"""LoRA counts and merge checks (ftkit.lora), and the hand-written soft prompt against peft's."""
import torch
from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model

import ftkit
from ftkit import lora
from ftkit.lessons.soft_prompt import SoftPrompt

H, LAYERS = 32, 2  # tiny-bert; tiny-llama: hidden 64, 2 layers, 2 key/value heads of 16


def test_lora_count_on_query_value():
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=3)
    assert lora.expected_params(model, 4, ["query", "value"]) == LAYERS * 2 * 4 * (H + H)
    net = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"]))
    assert ftkit.count_params(net)[0] == LAYERS * 2 * 4 * (H + H) + H * 3 + 3


def test_lora_targets_match_peft_suffix_rule():
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=2)
    names = lora.targets(model, ["output.dense"])
    assert len(names) == 2 * LAYERS and not any("pooler" in n for n in names)


def test_lora_count_on_grouped_query_attention():
    model, _ = ftkit.load_causal_lm("tiny-llama")
    expected = lora.expected_params(model, 8, ["q_proj", "v_proj"])
    assert expected == LAYERS * 8 * ((64 + 64) + (64 + 32))
    net = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8))  # peft's default targets: q, v
    assert ftkit.count_params(net)[0] == expected


def test_merged_lora_gives_the_same_logits():
    model, tok = ftkit.load_causal_lm("tiny-llama")
    net = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, init_lora_weights=False))
    batch = tok(["hello there", "a longer message here"], return_tensors="pt", padding=True)
    base = ftkit.load_causal_lm("tiny-llama")[0]
    assert lora.max_logit_diff(net, base, batch) > 1e-3  # the adapter does something
    with torch.inference_mode():
        before = net(**batch).logits
    merged = net.merge_and_unload()
    with torch.inference_mode():
        assert (merged(**batch).logits - before).abs().max() < 1e-5


def test_soft_prompt_counts_and_freezes():
    model, _ = ftkit.load_causal_lm("tiny-llama")
    tuned = SoftPrompt(model, 6, init_ids=[10, 11])
    assert ftkit.count_params(tuned)[0] == 6 * 64
    assert [n for n, p in tuned.named_parameters() if p.requires_grad] == ["prompt"]
    embeddings = model.get_input_embeddings().weight
    assert torch.equal(tuned.prompt.data, embeddings[[10, 11, 10, 11, 10, 11]])


def test_soft_prompt_computes_what_peft_computes():
    model, tok = ftkit.load_causal_lm("tiny-llama")
    text = "spam ham"
    ours = SoftPrompt(model, 5, init_ids=tok(text, add_special_tokens=False)["input_ids"])
    theirs = get_peft_model(ftkit.load_causal_lm("tiny-llama")[0], PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=5, prompt_tuning_init="TEXT", prompt_tuning_init_text=text,
        tokenizer_name_or_path=ftkit.models.tokenizer_source("tiny-llama")))
    batch = tok(["hello there", "a longer message here"], return_tensors="pt", padding=True)
    batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.inference_mode():
        a, b = ours(**batch), theirs(**batch)
    assert a.logits.shape == b.logits.shape and a.logits.shape[1] == 5 + batch["input_ids"].shape[1]
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.allclose(a.loss, b.loss, atol=1e-6)


def test_soft_prompt_trains_only_the_prompt():
    model, tok = ftkit.load_causal_lm("tiny-llama")
    tuned = SoftPrompt(model, 3)
    frozen = {n: p.clone() for n, p in model.named_parameters()}
    start = tuned.prompt.detach().clone()
    batch = tok(["hello there"], return_tensors="pt")
    tuned(**batch, labels=batch["input_ids"]).loss.backward()
    torch.optim.SGD(tuned.parameters(), lr=0.1).step()
    assert not torch.equal(tuned.prompt, start)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters())
