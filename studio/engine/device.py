"""Choosing the compute device: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.core.errors import UsageError

if TYPE_CHECKING:
    import torch


def resolve_device(choice: str = "auto") -> torch.device:
    """The torch device for a user's choice of 'auto', 'cpu', 'cuda' or 'mps'."""
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was requested but no CUDA GPU is available")
    if choice == "mps" and not torch.backends.mps.is_available():
        raise UsageError("MPS was requested but Apple Metal is not available")
    if choice not in ("cpu", "cuda", "mps"):
        raise UsageError(f"Unknown device {choice!r}: use auto, cpu, cuda or mps")
    return torch.device(choice)


def describe_device(choice: str = "auto") -> str:
    """A short human description, e.g. 'NVIDIA H100 (79 GB)' or 'CPU'."""
    import torch

    device = resolve_device(choice)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GB)"
    return "Apple GPU (MPS)" if device.type == "mps" else "CPU"
