"""ftkit.lm: a labelled dataset as prompts and answers for a causal LM, and the labels read back."""
import copy

import datasets
import pytest
import torch
from peft import PrefixTuningConfig, TaskType, get_peft_model

import ftkit
from ftkit import generate, lm, losses
from ftkit.lessons.soft_prompt import SoftPrompt
from helpers import one_line_error

WORDS = ["ham", "spam"]


@pytest.fixture(scope="module")
def tiny():
    model, tok = ftkit.load_causal_lm("tiny-llama")
    return model.eval(), tok


@pytest.fixture(scope="module")
def ds():
    return datasets.Dataset.from_dict({"text": ["win a prize now", "see you at lunch", "call me later please"],
                                       "label": [1, 0, 0]})


def test_encode_puts_the_loss_on_the_answer_only(tiny, ds):
    _, tok = tiny
    enc = lm.encode(ds, tok, lm.instruction(WORDS), WORDS)
    answer = tok("spam" + tok.eos_token, add_special_tokens=False)["input_ids"]
    row = enc[0]
    assert len(row["input_ids"]) == len(row["labels"]) == len(row["attention_mask"])
    assert row["input_ids"][-len(answer):] == answer
    assert row["labels"] == [-100] * (len(row["input_ids"]) - len(answer)) + answer
    assert tok.decode(row["input_ids"]).count("win a prize now") == 1


def test_encode_cuts_long_texts_not_the_instruction(tiny):
    _, tok = tiny
    long = datasets.Dataset.from_dict({"text": ["word " * 500], "label": [0]})
    ids = lm.encode(long, tok, "INSTRUCTION", WORDS, max_length=20)[0]["input_ids"]
    assert len(ids) < 60 and "INSTRUCTION" in tok.decode(ids)


def test_loader_pads_labels_with_minus_100(tiny, ds):
    _, tok = tiny
    batch = next(iter(lm.loader(lm.encode(ds, tok, "x", WORDS), tok, batch_size=3, shuffle=False)))
    assert batch["input_ids"].shape == batch["labels"].shape
    assert batch["input_ids"].shape[1] % 16 == 0
    assert ((batch["attention_mask"] == 0) <= (batch["labels"] == -100)).all()


@pytest.mark.parametrize("answer,index", [("spam", 1), ("Ham.", 0), (" SPAM!", 1), ("This is spam", -1), ("", -1)])
def test_parse(answer, index):
    assert lm.parse(answer, WORDS) == index


def test_label_metrics_count_off_format_answers_as_wrong():
    scores = lm.label_metrics(["ham", "I think it is spam", "spam", "spam"], [0, 1, 1, 0], WORDS)
    assert scores["format_ok"] == 0.75 and scores["accuracy"] == 0.5
    assert scores["f1"] == pytest.approx(0.5)  # spam: precision 1/2, recall 1/2


def test_label_words_must_start_differently(tiny):
    _, tok = tiny
    message = one_line_error(lambda: lm.label_token_ids(tok, ["positive", "positive!"]))
    assert "first token" in message


def test_decoding_without_cache_matches_generate(tiny, ds):
    model, tok = tiny
    args = dict(device="cpu", max_new_tokens=3, bf16=False)
    assert lm.generate_labels(model, tok, ds, "x", cache=False, **args) == lm.generate_labels(model, tok, ds, "x", **args)


def test_a_prefix_model_generates_with_its_prefix(tiny):
    model, tok = tiny
    net = get_peft_model(copy.deepcopy(model), PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4))
    texts = ["win a prize now, call today", "ok"]  # unequal lengths: the short row is padded
    options = dict(max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    side = tok.padding_side
    try:
        tok.padding_side = "left"
        left = tok(texts, return_tensors="pt", padding=True)
        with torch.inference_mode():
            cached, base = generate.new_tokens(net, left, **options), generate.new_tokens(model, left, **options)
            tok.padding_side = "right"
            plain = generate.greedy_ids(net, tok, tok(texts, return_tensors="pt", padding=True), 4)
    finally:
        tok.padding_side = side
    assert cached.tolist() == plain  # the prefix as a KV cache decodes like forward passes with the prefix
    assert cached.tolist() != base.tolist()  # and the prefix changes the answer


def test_verbalizer_reads_the_last_prompt_token(tiny, ds):
    model, tok = tiny
    scores = lm.verbalizer_logits(model, tok, ds, "x", WORDS, device="cpu", bf16=False)
    ids = lm.label_token_ids(tok, WORDS)
    for i, text in enumerate(ds["text"]):  # one example at a time: no padding at all
        single = tok(lm.prompt(tok, "x", text), add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            expected = model(**single).logits[0, -1, ids]
        assert torch.allclose(torch.from_numpy(scores[i]), expected, atol=1e-5)


def test_verbalizer_skips_soft_prompt_positions(tiny, ds):
    model, tok = tiny
    tuned = SoftPrompt(model, 4, init_ids=[5, 6, 7])
    scores = lm.verbalizer_logits(tuned, tok, ds, "x", WORDS, device="cpu", bf16=False)
    single = tok(lm.prompt(tok, "x", ds["text"][2]), add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        expected = tuned(**single).logits[0, -1, lm.label_token_ids(tok, WORDS)]
    assert torch.allclose(torch.from_numpy(scores[2]), expected, atol=1e-5)


def test_balanced_takes_classes_in_turn():
    ds = datasets.Dataset.from_dict({"text": [str(i) for i in range(10)], "label": [0] * 8 + [1] * 2})
    picked = lm.balanced(ds, 6)
    assert sorted(picked["label"]) == [0, 0, 0, 0, 1, 1]  # both 1s, then 0s fill up
    assert picked["text"] == lm.balanced(ds, 6)["text"]  # fixed order, whatever the training seed
    assert lm.balanced(ds, 4)["label"].count(1) == 2


def test_load_task_balances_training_only():
    ds, words, instruction = lm.load_task("sms-spam", ftkit.get_profile("cpu"))
    assert words == WORDS and "ham, spam" in instruction
    assert (len(ds["train"]), len(ds["test"])) == (320, 200)
    assert ds["train"]["label"].count(1) == 160
    assert ds["test"]["label"].count(1) == 26  # the real mix: 13% spam


def test_load_task_needs_labels():
    message = one_line_error(lambda: lm.load_task("qa", ftkit.get_profile("smoke")))
    assert "has no labels" in message


@pytest.mark.parametrize("kind", ["plain", "soft prompt", "peft prompt", "peft p-tuning", "peft prefix", "peft lora"])
def test_label_loss_equals_the_full_loss(tiny, ds, kind):
    from peft import (LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, TaskType,
                      get_peft_model)
    model, tok = tiny
    configs = {"peft prompt": PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3),
               "peft p-tuning": PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3,
                                                    encoder_hidden_size=16),
               "peft prefix": PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3),
               "peft lora": LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, target_modules=["q_proj", "v_proj"])}
    torch.manual_seed(0)
    net = (model if kind == "plain" else SoftPrompt(model, 3, init_ids=[5, 6]) if kind == "soft prompt"
           else get_peft_model(ftkit.load_causal_lm("tiny-llama")[0], configs[kind]))
    inner = losses.lm_keeping_logits(net)
    assert inner is not None
    batch = next(iter(lm.loader(lm.encode(ds, tok, lm.instruction(WORDS), WORDS), tok, batch_size=3, shuffle=False)))
    labelled = int((batch["labels"] != -100).sum())
    assert labelled < batch["labels"].numel() / 4  # most positions are skipped
    scored = []
    hook = inner.get_output_embeddings().register_forward_hook(lambda m, args, out: scored.append(out.shape))
    with torch.inference_mode():
        assert losses.label_loss(net, batch).item() == pytest.approx(net(**batch).loss.item(), abs=1e-5)
    hook.remove()
    assert scored[0] == (labelled, model.config.vocab_size)  # the output layer ran on the labelled positions only


def test_label_loss_without_logits_to_keep_runs_the_full_model(tiny, ds):
    model, tok = tiny

    class Plain(torch.nn.Module):  # a wrapper that takes no extra keyword arguments
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask, labels=None):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    batch = next(iter(lm.loader(lm.encode(ds, tok, "x", WORDS), tok, batch_size=3, shuffle=False)))
    assert losses.lm_keeping_logits(Plain()) is None
    with torch.inference_mode():
        assert losses.label_loss(Plain(), batch).item() == pytest.approx(model(**batch).loss.item(), abs=1e-6)
