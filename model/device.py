"""Choosing the device a model runs on.

resolve_device("auto")   # CUDA if present, else Apple MPS, else CPU
resolve_device("cuda:1") # DeviceError naming what is available if there is no second GPU
"""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """An asked-for device does not exist on this machine."""


def available_devices() -> list[str]:
    """Names of the devices this machine has, best first."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` into a device that exists here."""
    name = (name or "auto").strip().lower()
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}; available: {', '.join(available)}") from exc
    wanted = str(device) if device.index is not None or device.type != "cuda" else "cuda:0"
    if wanted not in available:
        raise DeviceError(
            f"device {name!r} is not available on this machine; available: {', '.join(available)}"
        )
    return device


def use_exact_float32(device: torch.device) -> None:
    """On CUDA, turn off TF32 for cuDNN and matmuls, so generation is plain float32.

    With TF32 (cuDNN's default on Ampere and later) the per-step LSTM kernel and the whole-sequence kernel
    round differently: on an H200 the carried-state logits were 1.5e-3 away from a re-run's. In float32
    they agree as on the CPU. Character models are small, so serving loses nothing measurable by it.
    """
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
