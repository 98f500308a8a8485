"""Choosing the compute device: a working CUDA GPU, then Apple MPS, then the CPU.

A CUDA GPU counts as working when this PyTorch build carries kernels for its architecture
and a tiny computation on it succeeds: an older card (a GTX 10xx on a build for sm_75 and
newer) reports CUDA as available and then fails every kernel. After an unrecoverable GPU
error the GPU is set aside for the rest of the session.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from studio.core.errors import UsageError

if TYPE_CHECKING:
    import torch

_set_aside: list[str] = []  # why the GPU is no longer used in this session, once it failed


def resolve_device(choice: str = "auto") -> torch.device:
    """The torch device for a user's choice of 'auto', 'cpu', 'cuda' or 'mps'."""
    import torch

    if choice == "auto":
        if torch.cuda.is_available() and gpu_problem() is None:
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("CUDA was requested but no CUDA GPU is available")
        problem = gpu_problem()
        if problem is not None:
            raise UsageError(f"CUDA was requested but the GPU cannot be used: {problem}")
    if choice == "mps" and not torch.backends.mps.is_available():
        raise UsageError("MPS was requested but Apple Metal is not available")
    if choice not in ("cpu", "cuda", "mps"):
        raise UsageError(f"Unknown device {choice!r}: use auto, cpu, cuda or mps")
    return torch.device(choice)


def gpu_problem() -> str | None:
    """Why the CUDA GPU is not used, or None when it works (or there is none)."""
    import torch

    if _set_aside:
        return _set_aside[0]
    if not torch.cuda.is_available():
        return None
    return _check_cuda(torch.cuda.current_device())


def set_gpu_aside(reason: str) -> None:
    """Stop using the GPU for the rest of this session (after an unrecoverable error)."""
    if not _set_aside:
        _set_aside.append(reason)


@functools.cache
def _check_cuda(index: int) -> str | None:
    import torch

    name = torch.cuda.get_device_name(index)
    major, minor = torch.cuda.get_device_capability(index)
    built_for = torch.cuda.get_arch_list()
    if not arch_supported((major, minor), built_for):
        return (
            f"{name} is sm_{major}{minor}, and this PyTorch build only has kernels for "
            f"{', '.join(built_for) or 'no GPU'}"
        )
    try:
        _tiny_computation(torch.device("cuda", index))
    except Exception as err:  # any failure here means jobs would fail the same way
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return f"{name} failed a test computation ({first_line[:160]})"
    return None


def arch_supported(capability: tuple[int, int], built_for: list[str]) -> bool:
    """Whether a card of `capability` runs a build for `built_for` (e.g. ['sm_75', 'sm_80']).

    Kernels for sm_XY run on cards of the same major version and a minor version of at least
    Y; PTX (compute_XY) is compiled on the fly for any card at least as new.
    """
    for arch in built_for:
        found = re.fullmatch(r"(sm|compute)_(\d+?)(\d)[a-z]?", arch)
        if found is None:
            continue
        kind, major, minor = found.group(1), int(found.group(2)), int(found.group(3))
        if kind == "sm" and major == capability[0] and minor <= capability[1]:
            return True
        if kind == "compute" and (major, minor) <= capability:
            return True
    return False


def _tiny_computation(device: torch.device) -> None:
    import torch
    import torch.nn.functional as F

    pixels = torch.ones(1, 3, 16, 16, device=device)
    out = F.conv2d(pixels, torch.ones(3, 3, 3, 3, device=device), padding=1)
    spectrum = torch.fft.rfft2(out)
    total = float((out.sum() + spectrum.abs().sum()).item())  # waits for the kernels to finish
    if not total > 0:
        raise RuntimeError("wrong result")


def describe_device(choice: str = "auto") -> str:
    """A short human description, e.g. 'NVIDIA H100 (79 GB)' or 'CPU'."""
    import torch

    device = resolve_device(choice)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GB)"
    return "Apple GPU (MPS)" if device.type == "mps" else "CPU"
