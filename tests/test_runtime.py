"""runtime: bf16 autocast where it pays, and SDPA kept off cuDNN's attention kernel inside it on CUDA."""
import warnings

import pytest
import torch

from ftkit import runtime


def sdpa_flags():
    cuda = torch.backends.cuda
    return (cuda.cudnn_sdp_enabled(), cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(),
            cuda.math_sdp_enabled())


def test_no_cudnn_attention_turns_only_cudnn_off_and_restores_it():
    before = sdpa_flags()
    assert before[0], "torch's default has cuDNN attention on"
    with runtime.no_cudnn_attention("cuda"):
        assert sdpa_flags() == (False, *before[1:])
    assert sdpa_flags() == before


def test_no_cudnn_attention_is_a_no_op_off_cuda():
    before = sdpa_flags()
    with runtime.no_cudnn_attention("cpu"):
        assert sdpa_flags() == before


def test_bf16_autocast_on_cuda_runs_without_cudnn_attention(monkeypatch):
    monkeypatch.setattr(runtime, "bf16_supported", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU-only torch disables CUDA autocast, with a warning
        with runtime.autocast("cuda"):
            assert not torch.backends.cuda.cudnn_sdp_enabled()
        with runtime.autocast("cuda", enabled=False):
            assert torch.backends.cuda.cudnn_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled()


@pytest.mark.parametrize("enabled", [True, False])
def test_cpu_autocast_is_bf16_only_where_asked_and_supported(enabled):
    with runtime.autocast("cpu", enabled):
        on = torch.is_autocast_enabled("cpu")
        dtype = torch.get_autocast_dtype("cpu")
    assert on == (enabled and runtime.bf16_supported("cpu"))
    if on:
        assert dtype == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")
