"""Tests for ftkit.profiles: the three profiles, ``auto``, the FTKIT_PROFILE override and the errors."""

import dataclasses

import pytest
import torch

from ftkit import profiles, sweep
from ftkit.platform.errors import FtkitError
from ftkit.platform.profiles import PROFILES, get_profile
from helpers import one_line_error

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(autouse=True)
def _no_profile_override(monkeypatch):
    # FTKIT_PROFILE set by the caller's shell (e.g. a notebook run) must not leak into these tests.
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)


def test_env_var_name():
    assert profiles.ENV_VAR == "FTKIT_PROFILE"


def test_exactly_three_profiles():
    assert list(PROFILES) == ["smoke", "cpu", "gpu"]
    assert all(PROFILES[name].name == name for name in PROFILES)


@pytest.mark.parametrize("name, expected", [
    ("smoke", dict(device="cpu", real_models=False, max_train=48, max_eval=32, batch_size=16, max_length=64)),
    ("cpu", dict(device="cpu", real_models=True, max_train=1000, max_eval=400, batch_size=32, max_length=128)),
    ("gpu", dict(device="cuda", real_models=True, max_train=8000, max_eval=2000, batch_size=64, max_length=256)),
])
def test_profile_fields(name, expected):
    assert dataclasses.asdict(PROFILES[name]) == {"name": name, **expected}


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["cpu"].batch_size = 1


@pytest.mark.parametrize("name", ["smoke", "cpu"])
def test_get_profile_by_name_returns_the_registry_object(name):
    assert get_profile(name) is PROFILES[name]


@pytest.mark.skipif(not NO_CUDA, reason="checks the CUDA-less behaviour")
def test_auto_is_cpu_without_cuda():
    assert get_profile("auto") is PROFILES["cpu"]
    assert get_profile() is PROFILES["cpu"]  # "auto" is the default


@pytest.mark.parametrize("env, arg, expected", [
    ("smoke", "cpu", "smoke"),
    ("cpu", "smoke", "cpu"),
    ("smoke", "auto", "smoke"),
    ("smoke", 123, "smoke"),          # the env var wins even over an argument that would be an error
    ("smoke", "no-such", "smoke"),
])
def test_env_var_overrides_argument(monkeypatch, env, arg, expected):
    monkeypatch.setenv("FTKIT_PROFILE", env)
    assert get_profile(arg).name == expected


def test_empty_env_var_is_ignored(monkeypatch):
    monkeypatch.setenv("FTKIT_PROFILE", "")
    assert get_profile("smoke").name == "smoke"


def test_bad_env_var_is_an_error(monkeypatch):
    monkeypatch.setenv("FTKIT_PROFILE", "turbo")
    with pytest.raises(FtkitError, match="'turbo'"):
        get_profile("cpu")


def test_unknown_name_lists_valid_names_on_one_line():
    message = one_line_error(lambda: get_profile("fast"))
    assert message == "unknown profile 'fast': choose one of auto, cpu, gpu, smoke"


def test_names_are_case_sensitive():
    with pytest.raises(FtkitError, match="unknown profile 'CPU'"):
        get_profile("CPU")


@pytest.mark.skipif(not NO_CUDA, reason="checks the CUDA-less behaviour")
def test_gpu_without_cuda_is_an_error():
    message = one_line_error(lambda: get_profile("gpu"))
    assert "'gpu'" in message and "CUDA" in message and "'cpu'" in message


@pytest.mark.skipif(not NO_CUDA, reason="checks the CUDA-less behaviour")
def test_gpu_from_env_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setenv("FTKIT_PROFILE", "gpu")
    with pytest.raises(FtkitError, match="needs CUDA"):
        get_profile("cpu")


@pytest.mark.parametrize("value", [None, 1, 2.5, ["cpu"]])
def test_non_string_is_an_error(value):
    message = one_line_error(lambda: get_profile(value))
    assert "'profile'" in message and repr(value) in message


def test_ftkit_error_is_a_value_error():
    assert issubclass(FtkitError, ValueError)


@pytest.mark.parametrize("name, expected", [("smoke", 32), ("cpu", 1000), ("gpu", 8000)])
def test_pick(name, expected):
    assert PROFILES[name].pick(smoke=32, cpu=1000, gpu=8000) == expected


def test_pick_returns_the_object_itself():
    value = object()
    assert PROFILES["cpu"].pick(smoke=None, cpu=value, gpu=None) is value


def test_pick_needs_keywords():
    with pytest.raises(TypeError):
        PROFILES["cpu"].pick(1, 2, 3)



def test_sweeps_run_at_most_two_seeds_except_on_gpu():
    assert sweep.seeds(PROFILES["cpu"], 0, 3) == [0, 1]
    assert sweep.seeds(PROFILES["smoke"], 5, 1) == [5]
    assert sweep.seeds(PROFILES["gpu"], 1, 3) == [1, 2, 3]
