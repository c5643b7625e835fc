import pytest
import torch

from model.device import DeviceError, available_devices, resolve_device, use_exact_float32


def test_auto_picks_the_best_available_device():
    best = available_devices()[0]
    assert str(resolve_device("auto")) == best
    assert available_devices()[-1] == "cpu"


def test_cpu_is_always_there():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this check needs a machine without CUDA")
def test_missing_cuda_is_a_clear_error_naming_what_exists():
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda")
    assert "not available" in str(info.value)
    assert "cpu" in str(info.value)


def test_nonsense_device_name_is_refused():
    with pytest.raises(DeviceError) as info:
        resolve_device("toaster")
    assert "available: " in str(info.value)


def test_exact_float32_turns_tf32_off_for_cuda_only():
    """TF32 made carried-state logits differ from a re-run by 1.5e-3 on an H200 (benchmarks/gpu_check.py)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        use_exact_float32(torch.device("cpu"))
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        use_exact_float32(torch.device("cuda", 0))  # flips flags only; no GPU needed
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
