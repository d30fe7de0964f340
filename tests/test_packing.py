"""Packed causal-LM batches (ftkit.packing): the same examples, fewer pad tokens, the same loss and gradients."""
import torch
from transformers import DataCollatorForSeq2Seq

import ftkit
from ftkit import lm, losses, packing

TEXTS = ["a b c d e f g", "hello there", "the quick brown fox jumps over", "x",
         "one two three four five six seven eight"]


def setup():
    torch.manual_seed(0)
    model, tok = ftkit.load_causal_lm("tiny-llama")
    examples = lm.text_examples(TEXTS, tok)
    return model, tok, [examples[i] for i in range(len(examples))]


def test_rows_are_filled_longest_first():
    tok = ftkit.load_causal_lm("tiny-llama")[1]
    collate = packing.PackedCollator(tok, row_tokens=10)
    assert collate.rows([7, 2, 6, 1, 8]) == [[4, 1], [0, 3], [2]]  # 8+2, 7+1, 6
    assert collate.rows([12, 3]) == [[0], [1]]  # a row is as wide as the longest example when that is longer


def test_packed_rows_keep_every_token_and_restart_positions():
    model, tok, rows = setup()
    batch = packing.PackedCollator(tok, row_tokens=16)(rows)
    lengths = [len(r["input_ids"]) for r in rows]
    assert batch["input_ids"].shape == (2, 16)  # 24 tokens in 2 rows of 16, not 5 rows of 8
    assert int((batch["labels"] != -100).sum()) == sum(n - 1 for n in lengths)  # a first token is never a target
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert "attention_mask" not in batch


def test_packed_loss_and_gradients_equal_the_padded_ones():
    model, tok, rows = setup()
    packed = packing.PackedCollator(tok, row_tokens=16)(rows)
    padded = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)(rows)
    model.train()
    grads = []
    for batch in (packed, padded):
        model.zero_grad()
        loss = losses.label_loss(model, batch)
        loss.backward()
        grads.append((loss.item(), model.model.layers[0].self_attn.q_proj.weight.grad.clone()))
    assert abs(grads[0][0] - grads[1][0]) < 1e-5
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)


def test_packed_loader_gives_the_same_examples_per_batch():
    model, tok, _ = setup()
    encoded = lm.text_examples(TEXTS * 4, tok)
    padded = list(lm.loader(encoded, tok, batch_size=8, seed=3))
    packed = list(lm.loader(encoded, tok, batch_size=8, seed=3, pack=True, by_length=True))
    assert len(packed) == len(padded) == 3
    for a, b in zip(packed, padded):
        assert sorted(a["input_ids"][a["input_ids"] != tok.pad_token_id].tolist()) == \
            sorted(b["input_ids"][b["attention_mask"].bool()].tolist())
        assert a["input_ids"].numel() < b["input_ids"].numel()


def test_shuffled_batches_mix_lengths_keep_every_example_and_are_the_packed_default():
    model, tok, _ = setup()
    encoded = lm.text_examples(TEXTS * 16, tok)  # 16 copies of five lengths: Trainer's sampler sorts 5 batches

    def spread(batches):  # longest minus shortest example, summed over the batches
        return sum(int(b["attention_mask"].sum(1).max() - b["attention_mask"].sum(1).min()) for b in batches)

    def tokens(batch):
        ids = batch["input_ids"]
        return sorted(ids[ids != tok.pad_token_id].tolist())
    grouped = list(lm.loader(encoded, tok, batch_size=4, seed=3))
    shuffled = list(lm.loader(encoded, tok, batch_size=4, seed=3, by_length=False))
    packed = list(lm.loader(encoded, tok, batch_size=4, seed=3, pack=True))  # packed: shuffled by default
    assert (spread(grouped), spread(shuffled)) == (19, 111)  # a plain shuffle mixes lengths in a batch
    assert sorted(sum((tokens(b) for b in shuffled), [])) == sorted(sum((tokens(b) for b in grouped), []))
    assert [tokens(a) for a in packed] == [tokens(b) for b in shuffled]  # packing keeps each batch's examples
    assert sum(b["input_ids"].numel() for b in packed) < sum(b["input_ids"].numel() for b in shuffled)
