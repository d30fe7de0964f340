"""Tiny random-weight checkpoints of other model families, saved as local folders, as a user's own model would be.

Offline, the only real tokenizers are MiniLM's WordPiece and SmolLM2's BPE, so the encoders reuse the first
and the decoders the second. Each family is saved the way its checkpoints usually come (an encoder as a
masked LM, a decoder as a causal LM), with the quirks users meet: GPT-2 has no pad token and no chat
template, OPT no chat template, ELECTRA a narrower embedding than its hidden size, Qwen2 untied output
weights, Gemma and Qwen2 grouped key-value heads, Phi a partial rotary embedding and fused-free ``dense``.

    python tests/families.py DIR      # build every family under DIR (a second call reuses them)
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoModelForMaskedLM, DebertaV2Config, ElectraConfig, GemmaConfig,
                          GPT2Config, OPTConfig, PhiConfig, Qwen2Config, RobertaConfig)

import ftkit

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _encoder(tok):
    return dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, max_position_embeddings=514, **SMALL)


def _decoder(tok):
    return dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                max_position_embeddings=512)


# family -> (kind, tokenizer source, config from the tokenizer)
FAMILIES = {
    "roberta": ("encoder", "minilm", lambda tok: RobertaConfig(type_vocab_size=1, **_encoder(tok))),
    "deberta-v2": ("encoder", "minilm", lambda tok: DebertaV2Config(
        type_vocab_size=0, relative_attention=True, position_buckets=64, pos_att_type=["p2c", "c2p"],
        norm_rel_ebd="layer_norm", share_att_key=True, **_encoder(tok))),
    "electra": ("encoder", "minilm", lambda tok: ElectraConfig(embedding_size=16, **_encoder(tok))),
    "gpt2": ("decoder", "smollm2-135m-instruct", lambda tok: GPT2Config(
        n_embd=32, n_layer=2, n_head=2, n_inner=64, n_positions=512, **_decoder(tok))),
    "opt": ("decoder", "smollm2-135m-instruct", lambda tok: OPTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64, word_embed_proj_dim=32,
        pad_token_id=tok.pad_token_id, **_decoder(tok))),
    "qwen2": ("decoder", "smollm2-135m-instruct", lambda tok: Qwen2Config(
        num_key_value_heads=1, tie_word_embeddings=False, **SMALL, **_decoder(tok))),
    "gemma": ("decoder", "smollm2-135m-instruct", lambda tok: GemmaConfig(
        num_key_value_heads=1, head_dim=16, **SMALL, **_decoder(tok))),
    "phi": ("decoder", "smollm2-135m-instruct", lambda tok: PhiConfig(
        partial_rotary_factor=0.5, **SMALL, **_decoder(tok))),
}
ENCODERS = [f for f, (kind, _, _) in FAMILIES.items() if kind == "encoder"]
DECODERS = [f for f, (kind, _, _) in FAMILIES.items() if kind == "decoder"]
NO_PAD = {"gpt2"}                # the tokenizer is saved without a pad token
NO_CHAT_TEMPLATE = {"gpt2", "opt"}  # ... and without a chat template


def build(family: str, root) -> Path:
    """The folder of ``family``'s tiny checkpoint under ``root``, built the first time (weights from seed 0)."""
    folder = Path(root) / f"tiny-{family}"
    if (folder / "config.json").exists():
        return folder
    kind, source, make = FAMILIES[family]
    tok = ftkit.load_tokenizer(source)
    if family in NO_PAD:
        tok.pad_token = None
    if family in NO_CHAT_TEMPLATE:
        tok.chat_template = None
    auto = AutoModelForMaskedLM if kind == "encoder" else AutoModelForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = auto.from_config(make(tok))
    partial = folder.with_name(folder.name + ".partial")
    model.save_pretrained(partial)
    tok.save_pretrained(partial)
    partial.rename(folder)  # whole or absent: a test worker never sees half a checkpoint
    return folder


def build_all(root) -> dict[str, Path]:
    return {family: build(family, root) for family in FAMILIES}


if __name__ == "__main__":
    for name, path in build_all(sys.argv[1] if len(sys.argv) > 1 else "runs/families").items():
        print(f"{name:12s} {path}")
