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
