"""ftkit.ewc: the Fisher diagonal, the penalty worked out by hand, and a penalty that holds weights back."""
import datasets
import pytest
import torch

import ftkit
from ftkit import ewc, lm, sft, train

TEXTS = ["The river flows to the sea.", "Cats sleep most of the day and hunt at night.", "Paris is in France."]


@pytest.fixture(scope="module")
def tiny():
    return ftkit.load_causal_lm("tiny-llama")


def batches(tok):
    return list(lm.loader(lm.text_examples(TEXTS, tok), tok, batch_size=2, shuffle=False))


def test_fisher_is_a_nonnegative_diagonal_normalised_to_mean_one(tiny):
    model, tok = tiny
    fisher = ewc.fisher_diagonal(model, batches(tok), bf16=False)
    assert fisher.keys() == {n for n, p in model.named_parameters() if p.requires_grad}
    values = torch.cat([f.flatten() for f in fisher.values()])
    assert (values >= 0).all() and values.mean().item() == pytest.approx(1.0, rel=1e-5)
    assert all(p.grad is None for p in model.parameters())  # no gradient left behind


def test_penalty_by_hand(tiny):
    model, _ = tiny
    name, weight = next((n, p) for n, p in model.named_parameters() if p.dim() == 2)
    fisher = {name: torch.full_like(weight, 2.0)}
    penalty = ewc.Penalty(model, fisher, strength=3.0)
    assert penalty(model).item() == 0.0
    with torch.no_grad():
        weight[0, 0] += 0.5
        weight[1, 1] -= 0.25
    assert penalty(model).item() == pytest.approx(3.0 * 2.0 * (0.5 ** 2 + 0.25 ** 2))
    with torch.no_grad():
        weight[0, 0] -= 0.5
        weight[1, 1] += 0.25


def test_a_strong_penalty_keeps_the_weights_nearer_their_start():
    def moved(strength):
        ftkit.runtime.seed_everything(0)
        model, tok = ftkit.load_causal_lm("tiny-llama")
        start = {n: p.detach().clone() for n, p in model.named_parameters()}
        fisher = {n: torch.ones_like(p) for n, p in model.named_parameters()}
        extra = {"penalty": ewc.Penalty(model, fisher, strength)} if strength else {}
        train.fit(model, tok, lm.loader(lm.text_examples(TEXTS, tok), tok, batch_size=3), epochs=3, lr=1e-2,
                  batch_size=3, device="cpu", log=False, bf16=False, **extra)
        return sum(((p.detach() - start[n]) ** 2).sum().item() for n, p in model.named_parameters())
    assert moved(1e4) < 0.5 * moved(0)


def test_perplexity_is_exp_of_the_token_weighted_loss(tiny):
    model, tok = tiny
    total, count = 0.0, 0
    with torch.inference_mode():
        for text in TEXTS:  # one text at a time: no padding
            ids = tok(text, return_tensors="pt", truncation=True, max_length=128)["input_ids"]
            total += model(input_ids=ids, labels=ids).loss.item() * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    expected = torch.tensor(total / count).exp().item()
    assert lm.perplexity(model, tok, TEXTS, device="cpu", batch_size=2, bf16=False) == pytest.approx(expected, rel=1e-4)


def test_answer_nll_scores_the_answer_tokens_only(tiny):
    model, tok = tiny
    encoded = sft.encode(datasets.Dataset.from_dict({"prompt": ["Hi?"], "response": ["Hello there."]}), tok)[0]
    ids, labels = torch.tensor([encoded["input_ids"]]), torch.tensor([encoded["labels"]])
    with torch.inference_mode():
        expected = model(input_ids=ids, labels=labels).loss.item()
    assert sft.answer_nll(model, tok, ["Hi?"], ["Hello there."], device="cpu", bf16=False) == pytest.approx(expected, rel=1e-4)


def test_drift_is_the_penalty_without_strength_and_counts_a_lora_adapter_merged():
    from peft import LoraConfig, get_peft_model
    model, _ = ftkit.load_causal_lm("tiny-llama")
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    penalty = ewc.Penalty(model, fisher, strength=3.0)
    name, weight = next((n, p) for n, p in model.named_parameters() if n.endswith("q_proj.weight"))
    with torch.no_grad():
        weight[0, 0] += 0.5
    assert penalty.drift(model) == pytest.approx(fisher[name][0, 0].item() * 0.25, rel=1e-5)
    assert penalty.drift(model) == pytest.approx(penalty(model).item() / 3.0, rel=1e-5)
    weight.requires_grad_(False)  # a frozen weight that moved still counts
    assert penalty.drift(model) == pytest.approx(fisher[name][0, 0].item() * 0.25, rel=1e-5)
    with torch.no_grad():
        weight.copy_(penalty.old[name])
    assert penalty.drift(model) == 0.0
    net = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    layers = net.base_model.model.model.layers
    expected = sum((fisher[f"model.layers.{i}.self_attn.q_proj.weight"] *
                    layers[i].self_attn.q_proj.get_delta_weight("default") ** 2).sum().item() for i in range(len(layers)))
    assert expected > 0 and penalty.drift(net) == pytest.approx(expected, rel=1e-4)
    assert hasattr(net, "peft_config")  # a merged copy was measured; the adapter is still in place
