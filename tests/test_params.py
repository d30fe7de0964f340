"""Tests for ftkit.params: notebook parameters as papermill injects them, checked and converted."""

import ast

import pytest

from ftkit import params
from ftkit.platform.errors import FtkitError
from helpers import one_line_error


@pytest.mark.parametrize("name, value, expected, kind", [
    ("lr", 2e-4, 2e-4, float),
    ("lr", 1, 1.0, float),              # an int is a fine float
    ("lr", 1.0, 1.0, float),            # upper bound is inclusive
    ("lora_alpha", 16, 16.0, float),
    ("lora_dropout", 0, 0.0, float),    # lower bound is inclusive
    ("lora_dropout", 0.1, 0.1, float),
    ("weight_decay", 0, 0.0, float),
    ("warmup", 0.1, 0.1, float),
    ("seed", 0, 0, int),
    ("seed", 1234, 1234, int),
    ("epochs", 3, 3, int),
    ("batch_size", 1, 1, int),
    ("max_length", 8, 8, int),          # the smallest allowed
    ("n_train", 500, 500, int),
    ("lora_r", 8, 8, int),
    ("max_new_tokens", 32, 32, int),
])
def test_good_values_are_converted(name, value, expected, kind):
    out = params.check(name, value)
    assert out == expected
    assert type(out) is kind


@pytest.mark.parametrize("name, value, words", [
    ("lr", "abc", ["must be a number", "'abc'", "(str)", "-p lr 2e-4"]),
    ("lr", -1, ["must be > 0 and <= 1", "-1.0", "-p lr 2e-4"]),
    ("lr", 0, ["must be > 0 and <= 1", "0.0"]),
    ("lr", 1.5, ["must be > 0 and <= 1", "1.5"]),
    ("lr", None, ["must be a number", "None", "(NoneType)"]),
    ("lora_r", 0, ["must be >= 1", "got 0", "-p lora_r 8"]),
    ("lora_r", "8", ["must be an integer", "'8'", "(str)"]),
    ("epochs", 2.5, ["must be an integer", "2.5", "(float)", "-p epochs 3"]),
    ("epochs", 0, ["must be >= 1", "got 0"]),
    ("seed", True, ["must be an integer", "True", "(bool)", "-p seed 1"]),
    ("seed", -1, ["must be >= 0", "got -1"]),
    ("lr", True, ["must be a number", "True", "(bool)"]),
    ("lora_dropout", 1, ["must be >= 0 and < 1", "1.0"]),
    ("warmup", -0.1, ["must be >= 0 and < 1", "-0.1"]),
    ("max_length", 7, ["must be >= 8", "got 7"]),
    ("batch_size", 0, ["must be >= 1", "got 0"]),
])
def test_bad_values_raise_one_line_error_naming_the_parameter(name, value, words):
    message = one_line_error(lambda: params.check(name, value))
    assert message.startswith(f"parameter {name!r} must be ")
    for word in words:
        assert word in message


@pytest.mark.parametrize("name, value", [
    ("prompt", "What is the capital of France?"),
    ("model", "minilm"),
    ("anything", None),
    ("flag", True),
    ("lr_scale", "abc"),   # only exact names have rules
])
def test_unknown_names_pass_through_unchanged(name, value):
    assert params.check(name, value) is value


def test_every_rule_has_a_papermill_example():
    for name, (kind, test, meaning, example) in params.RULES.items():
        assert kind in ("int", "float")
        assert example.startswith((f"-p {name} ", f"-p {name}s '["))  # a list parameter: the rule of each item


def test_every_example_passes_its_own_rule():
    for name, (kind, *_rest, example) in params.RULES.items():
        text = example.split(" ", 2)[2].strip("'")
        values = ast.literal_eval(text) if text.startswith("[") else [int(text) if kind == "int" else float(text)]
        assert values and all(params.check(name, v) == v for v in values)


def test_check_all_converts_and_keeps_order():
    got = params.check_all({"lr": 1, "epochs": 3, "prompt": "hi", "lora_alpha": 16})
    assert got == {"lr": 1.0, "epochs": 3, "prompt": "hi", "lora_alpha": 16.0}
    assert list(got) == ["lr", "epochs", "prompt", "lora_alpha"]
    assert type(got["lr"]) is float and type(got["lora_alpha"]) is float


def test_check_all_empty():
    assert params.check_all({}) == {}


@pytest.mark.parametrize("bad", [{"lr": "abc"}, {"lora_r": 0}, {"epochs": 2.5}, {"seed": True}, {"lr": -1}])
def test_check_all_raises_on_the_bad_parameter(bad):
    (name,) = bad
    with pytest.raises(FtkitError) as excinfo:
        params.check_all({"epochs": 3, "prompt": "x", **bad})
    assert "\n" not in str(excinfo.value)
    assert f"parameter {name!r}" in str(excinfo.value)
