import pytest
import torch

from model.device import DeviceError, available_devices, resolve_device


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
