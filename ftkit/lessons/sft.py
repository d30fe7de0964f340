"""Instruction tuning (supervised fine-tuning, SFT) of a chat model on prompt/response pairs.

    encoded = sft.encode(ds["train"], tok)                    # the chat template; loss on the response only
    train.fit(model, tok, lm.loader(encoded, tok, batch_size=16), epochs=2, lr=2e-4, device=device, ...)
    answers = sft.answer(model, tok, ds["test"]["prompt"], device=device)
    sft.scores(answers, ds["test"]["response"])               # exact match, ROUGE-1 and ROUGE-L F1

trl's ``SFTTrainer`` does the same from prompt/completion data (completion-only loss by default); notebook 12
runs both, the trainer through ``sft.SFTTrainer``, trl's with a cheaper loss on CPU. What no library offers is
the glue a reader can follow in a few lines: the template split into prompt and response tokens, batched
greedy answers, and the scores, which is this file.
"""
from __future__ import annotations

import importlib.util

import datasets
import trl

from ..engine import data, generate, lm, losses
from ..platform import runtime
from ..platform.errors import FtkitError
from ..engine.metrics import load as load_metric


def messages(prompt: str, response: str | None = None) -> list[dict]:
    """One exchange as chat messages (the template adds the model's default system message)."""
    return [{"role": "user", "content": prompt}] + ([{"role": "assistant", "content": response}]
                                                    if response is not None else [])


def prompt_text(tokenizer, prompt: str) -> str:
    """The prompt as the model sees it, ending where its answer starts."""
    return generate.apply_chat(tokenizer, messages(prompt), add_generation_prompt=True, tokenize=False)


def encode(ds, tokenizer, max_length: int = 192):
    """Token ids of each prompt + response in the chat template, with labels -100 on the prompt: the loss is on
    the response and its end-of-turn token, so the model learns to answer and to stop."""
    def one(example):
        p = prompt_text(tokenizer, example["prompt"])
        full = generate.apply_chat(tokenizer, messages(example["prompt"], example["response"]), tokenize=False)
        if not full.startswith(p):
            raise FtkitError("the chat template renders the prompt differently with an answer: mask by hand")
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(full[len(p):].rstrip("\n"), add_special_tokens=False)["input_ids"]
        ids = (p_ids + r_ids)[:max_length]
        labels = ([-100] * len(p_ids) + r_ids)[:max_length]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}
    return data.map_rows(ds, one, remove_columns=ds.column_names)


def answer(model, tokenizer, prompts, *, device, max_new_tokens: int = 48, batch_size: int = 16,
           bf16: bool = True) -> list[str]:
    """Greedy answers to each prompt in the chat template, batched; in the given order."""
    return generate.greedy(model, tokenizer, [prompt_text(tokenizer, p) for p in prompts], device=device,
                           max_new_tokens=max_new_tokens, batch_size=batch_size, bf16=bf16)


def answer_nll(model, tokenizer, prompts, answers, *, device, batch_size: int = 16, bf16: bool = True) -> float:
    """Mean negative log-likelihood per token of the given ``answers`` to ``prompts`` (chat template, the
    prompt masked): how much less likely a model finds answers it, or another model, once gave."""
    encoded = encode(datasets.Dataset.from_dict({"prompt": list(prompts), "response": list(answers)}), tokenizer)
    total, count = lm.label_nll(model, tokenizer, encoded, device=device, batch_size=batch_size, bf16=bf16)
    return total / count


def scores(answers, references) -> dict:
    """Exact match (case and punctuation ignored) and ROUGE-1 / ROUGE-L F1, through the local evaluate modules."""
    answers, references = list(answers), list(references)
    exact = load_metric("exact_match").compute(predictions=answers, references=references, ignore_case=True,
                                               ignore_punctuation=True)["exact_match"]
    return {"exact_match": exact, **load_metric("rouge").compute(predictions=answers, references=references)}


class SFTTrainer(trl.SFTTrainer):
    """trl's ``SFTTrainer`` with two changes. On a GPU each training step runs without cuDNN's attention kernel
    (``runtime.no_cudnn_attention``, slow on batches of changing length in bf16). On a CPU the training loss is
    computed by ``losses.label_loss``: the 49k-wide output layer only at the positions whose next token is labelled.
    trl's fused output layer scores only those positions on a Triton GPU; on a CPU it scores every position,
    prompt and padding included, and adds entropy and top-1 accuracy over the whole vocabulary (the ``entropy``
    and ``mean_token_accuracy`` it logs, which this class does not). On notebook 12's SmolLM2 LoRA run (fp32)
    training took 209 s instead of 305, with the same losses to 5e-5. On a GPU, and where logits are asked for
    (``return_outputs``), trl's own path runs."""
    # (written here: trl offers no switch between its fused head and the model's logits)
    # A tokenizer without a chat template (a base model's) gets a copy with ``generate.FALLBACK_CHAT_TEMPLATE``,
    # the template ``encode`` and ``answer`` use for it, so that trl renders the conversations the same way.

    def __init__(self, *args, processing_class=None, **kwargs):
        if processing_class is not None:
            processing_class = generate.with_chat_template(processing_class)
        super().__init__(*args, processing_class=processing_class, **kwargs)

    def training_step(self, *args, **kwargs):
        with runtime.no_cudnn_attention(self.args.device):
            return super().training_step(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs or self.args.device.type != "cpu":
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        loss = losses.label_loss(model, inputs)  # mean over this batch's labelled tokens
        if num_items_in_batch is None:
            return loss
        # trl and Trainer divide the summed loss by the labelled tokens of every accumulated micro-batch
        return loss * losses.items(inputs, "tokens") / num_items_in_batch


def conversations(ds):
    """prompt/response rows as trl's conversational prompt/completion format (chat messages): SFTTrainer
    renders them with the model's chat template and puts the loss on the completion only."""
    return ds.map(lambda e: {"prompt": messages(e["prompt"]),
                             "completion": [{"role": "assistant", "content": e["response"]}]},
                  remove_columns=ds.column_names)


def quantized_training(device) -> str:
    """Why QLoRA (a 4-bit frozen base under LoRA) cannot run here, or "" when it can: it needs bitsandbytes'
    4-bit kernels, which train only on a CUDA GPU."""
    if getattr(device, "type", str(device)) != "cuda":
        return "QLoRA needs a CUDA GPU (bitsandbytes' 4-bit layers do not train on CPU)"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "QLoRA needs bitsandbytes: pip install bitsandbytes"
    return ""
