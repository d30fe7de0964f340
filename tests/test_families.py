"""What the notebooks rely on of a model, for every family in tests/families.py (tiny random-weight checkpoints
saved as local folders): the layers, embeddings and head (ftkit.layout), LoRA targets and exact counts,
adapters, prefix widths, freezing, dropout settings, and the one-line errors for a model a notebook cannot take.

All tiny models: hidden 32, 2 layers, feed-forward 64, vocabularies of 30,522 (WordPiece) or 49,152 (BPE)."""
import pytest
import torch
from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model

import families
import ftkit
from ftkit import adapters, freezing, generate, layout, lora, models, sft
from ftkit.platform.errors import FtkitError
from helpers import one_line_error

H, F, L = 32, 64, 2
ALL = list(families.FAMILIES)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {f: str(p) for f, p in families.build_all(tmp_path_factory.mktemp("families")).items()}


def classifier(folders, family, k=2):
    return ftkit.load_classifier(folders[family], num_labels=k)


# peft's default LoRA targets, and r x (d_in + d_out) over them at r = 4, worked out by hand per layer:
# q and v h x h in most; GPT-2's fused c_attn h -> 3h; Qwen2 and Gemma one key/value head of 16 (v: 32 -> 16);
# Phi adds fc1 (32 -> 64) and fc2 (64 -> 32)
LORA = {"roberta": (["query", "value"], 4 * (64 + 64)),
        "deberta-v2": (["query_proj", "value_proj"], 4 * (64 + 64)),
        "electra": (["query", "value"], 4 * (64 + 64)), "gpt2": (["c_attn"], 4 * (32 + 96)),
        "opt": (["q_proj", "v_proj"], 4 * (64 + 64)), "qwen2": (["q_proj", "v_proj"], 4 * (64 + 48)),
        "gemma": (["q_proj", "v_proj"], 4 * (64 + 48)),
        "phi": (["q_proj", "v_proj", "fc1", "fc2"], 4 * (64 + 64 + 96 + 96))}
# where a Houlsby adapter goes: the attention output and feed-forward output projections
PLACES = {"roberta": ("attention.output.dense", "output.dense"),
          "deberta-v2": ("attention.output.dense", "output.dense"),
          "electra": ("attention.output.dense", "output.dense"), "gpt2": ("attn.c_proj", "mlp.c_proj"),
          "opt": ("self_attn.out_proj", "fc2"), "qwen2": ("self_attn.o_proj", "mlp.down_proj"),
          "gemma": ("self_attn.o_proj", "mlp.down_proj"), "phi": ("self_attn.dense", "mlp.fc2")}
# a sequence classifier's head beyond its last layer, k = 2 labels: RoBERTa/ELECTRA a dense layer and out_proj;
# DeBERTa relative positions (2 x 64 buckets x 32), pooler and classifier; decoders the final norm and a bias-free score
HEAD = {"roberta": H * H + H + 2 * H + 2, "electra": H * H + H + 2 * H + 2,
        "deberta-v2": 128 * H + H * H + H + 2 * H + 2, "gpt2": 2 * H + 2 * H, "opt": 2 * H + 2 * H,
        "qwen2": H + 2 * H, "gemma": H + 2 * H, "phi": 2 * H + 2 * H}


@pytest.mark.parametrize("family", ALL)
def test_layers_embeddings_and_head_are_found(folders, family):
    model, _ = classifier(folders, family)
    assert len(layout.layers(model)) == L
    groups = layout.groups(model)
    assert len(groups) == L + 2
    assert sum(p.numel() for g in groups for p in g) == ftkit.count_params(model)[1]  # a partition
    assert model.get_input_embeddings().weight in [p for p in groups[0]]
    assert sum(p.numel() for p in groups[-1]) == HEAD[family]
    assert layout.groups(get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=2,
                                                          target_modules=layout.lora_targets(model))))


@pytest.mark.parametrize("family", ALL)
def test_lora_default_targets_and_exact_count(folders, family):
    model, _ = classifier(folders, family)
    targets, per_layer = LORA[family]
    assert layout.lora_targets(model) == targets
    expected = lora.expected_params(model, 4, targets) + lora.head_params(model)
    assert lora.expected_params(model, 4, targets) == L * per_layer
    net = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=targets))
    assert ftkit.count_params(net)[0] == expected


@pytest.mark.parametrize("family", ALL)
def test_every_projection_by_kind(folders, family):
    model, _ = classifier(folders, family)
    attention, mlp = layout.projections(model, "attention"), layout.projections(model, "mlp")
    assert len(mlp) in (2, 3) and set(attention).isdisjoint(mlp)
    assert len(attention) == (2 if family == "gpt2" else 4)  # q, k, v, out; GPT-2: fused c_attn, c_proj
    assert layout.projections(model) == [n for n in layout.projections(model) if n in attention + mlp]
    everything = lora.expected_params(model, 2, layout.projections(model)) + lora.head_params(model)
    found = layout.projections(model)
    net = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=2, target_modules=found))
    assert ftkit.count_params(net)[0] == everything
    assert layout.projections(net) == found  # peft's wrappers count as the projections they wrap


@pytest.mark.parametrize("family", ALL)
def test_adapters_start_as_the_identity_and_count_exactly(folders, family):
    model, tok = classifier(folders, family)
    assert layout.output_projections(model) == PLACES[family]
    expected = adapters.expected_trainable(model, 8)
    batch = tok(["a message", "another, longer message"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        before = model(**batch).logits
    adapters.add_adapters(model, bottleneck=8)
    with torch.inference_mode():
        assert torch.equal(model(**batch).logits, before)
    assert ftkit.count_params(model)[0] == expected
    per_adapter = 2 * H * 8 + H + 8
    assert expected >= 2 * L * per_adapter + HEAD[family]


@pytest.mark.parametrize("family", families.DECODERS)
def test_prefix_width_matches_peft(folders, family):
    model, _ = ftkit.load_causal_lm(folders[family])
    net = get_peft_model(model, PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3))
    assert ftkit.count_params(net)[0] == 3 * L * 2 * layout.kv_width(model)
    assert layout.kv_width(model) == (16 if family in ("qwen2", "gemma") else H)


@pytest.mark.parametrize("family", ALL)
def test_freezing_trains_the_head_then_one_layer_more(folders, family):
    model, _ = classifier(folders, family)
    sizes = [sum(p.numel() for p in g) for g in freezing.layer_groups(model)]
    freezing.unfreeze_top(model, 0)
    assert ftkit.count_params(model)[0] == sizes[-1] == HEAD[family]
    freezing.unfreeze_top(model, 1)
    assert ftkit.count_params(model)[0] == sizes[-1] + sizes[-2]


@pytest.mark.parametrize("family", ALL)
def test_dropout_settings_reach_every_dropout_module(folders, family):
    settings = models.dropout_settings(folders[family], 0.0)
    assert settings and set(settings.values()) == {0.0}
    model, _ = ftkit.load_classifier(folders[family], num_labels=2, **settings)
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout)
               if "classifier" not in type(m).__name__.lower())


@pytest.mark.parametrize("family", families.ENCODERS)
def test_an_encoder_is_refused_as_a_causal_lm_in_one_line(folders, family):
    message = one_line_error(lambda: ftkit.load_causal_lm(folders[family], parameter="lm_model"))
    assert f"model {folders[family]!r} is an encoder ({family}), not a causal LM" in message
    assert "set the parameter 'lm_model'" in message


@pytest.mark.parametrize("family", families.DECODERS)
def test_a_decoder_loads_as_causal_lm_and_as_classifier(folders, family):
    lm_model, tok = ftkit.load_causal_lm(folders[family])
    assert tok.pad_token is not None  # GPT-2 ships none: padding with EOS
    clf, _ = classifier(folders, family, k=3)
    batch = tok(["one", "two words here"], padding=True, return_tensors="pt")
    assert clf(**batch).logits.shape == (2, 3)


def test_a_tokenizer_without_chat_template_gets_the_fallback(folders):
    _, tok = ftkit.load_causal_lm(folders["gpt2"])
    assert not tok.chat_template
    prompt = sft.prompt_text(tok, "What is 2 + 2?")
    assert prompt == "<|user|>\nWhat is 2 + 2?<|im_end|>\n<|assistant|>\n"
    example = sft.encode(ftkit.load_dataset("qa", max_train=2)["train"], tok)[0]
    answer = [i for i, label in zip(example["input_ids"], example["labels"]) if label != -100]
    assert answer[-1] == tok.eos_token_id  # the turn ends, and the model learns to stop
    assert not tok.chat_template  # the user's tokenizer is unchanged
    _, chat_tok = ftkit.load_causal_lm(folders["qwen2"])
    assert generate.chat_template(chat_tok) == chat_tok.chat_template  # a chat model keeps its own


def test_lora_targets_named_by_the_user_are_checked(folders):
    model, _ = classifier(folders, "gpt2")
    assert layout.lora_targets(model, ["c_attn", "mlp.c_proj"]) == ["c_attn", "mlp.c_proj"]
    message = one_line_error(lambda: layout.lora_targets(model, ["query"]))
    assert "parameter 'lora_targets': 'query' is no projection of GPT2ForSequenceClassification (gpt2)" in message
    assert "attn.c_attn" in message
    assert "must be a list of module names" in one_line_error(lambda: layout.lora_targets(model, "c_attn"))


def test_a_model_without_a_layer_list_is_refused_in_one_line():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    model.config = type("Config", (), {"num_hidden_layers": 3, "model_type": "custom"})()
    message = one_line_error(lambda: layout.layers(model))
    assert "Sequential (custom) has no list of 3 transformer layers" in message


def test_the_builtin_models_keep_their_layout():
    bert, _ = ftkit.load_classifier("tiny-bert", num_labels=2)
    llama, _ = ftkit.load_causal_lm("tiny-llama")
    assert layout.output_projections(bert) == ("attention.output.dense", "output.dense")
    assert layout.output_projections(llama) == ("self_attn.o_proj", "mlp.down_proj")
    assert layout.projections(llama, "attention") == ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                      "self_attn.o_proj"]
    assert layout.kv_width(llama) == 32 and layout.lora_targets(bert) == ["query", "value"]
    with pytest.raises(FtkitError, match="unknown projection kind 'ffn'"):
        layout.projections(bert, "ffn")
