"""Importing torch on the worker thread without freezing the window.

`import torch` loads several hundred megabytes of shared libraries while holding the GIL,
which would stall the GUI thread for a quarter of a second or more. Loading those libraries
first through `dlopen` called via ctypes (which releases the GIL) leaves only the Python part
of the import, which yields the GIL regularly.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

from studio.core.errors import StudioError

_TORCH_LIBRARIES = (
    "libtorch_global_deps.so",
    "libc10.so",
    "libtorch_cpu.so",
    "libc10_cuda.so",
    "libtorch_cuda.so",
    "libtorch.so",
    "libtorch_python.so",
)


def preload_torch_libraries() -> None:
    """Load torch's shared libraries with the GIL released (Linux only; best effort)."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return
    package = Path(spec.origin).parent
    libc = ctypes.CDLL(None)
    libc.dlopen.restype = ctypes.c_void_p
    libc.dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    paths = [package / "lib" / name for name in _TORCH_LIBRARIES]
    paths += sorted(package.glob("_C.*.so"))
    for path in paths:
        if path.is_file():
            libc.dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_GLOBAL)


def describe_compute_device(choice: str = "auto") -> str:
    """'NVIDIA H100 (79 GB)', 'CPU (24 GB RAM)', or, when a GPU is present but cannot be
    used, 'CPU (24 GB RAM); GPU not used: <why>'.

    Imports torch, checks the GPU against this build's architectures and runs a tiny
    convolution and FFT on the device, so that the first job does not pay for loading
    libraries or creating a GPU context. Call it off the GUI thread.
    """
    problem = None
    try:
        preload_torch_libraries()
        from studio.engine.device import describe_device, gpu_problem, resolve_device

        description = describe_device(choice)
        _touch(resolve_device(choice))
        problem = gpu_problem()
    except (ImportError, StudioError):
        description = "CPU"
    if description == "CPU":
        ram = _system_ram_gb()
        description = f"CPU ({ram:.0f} GB RAM)" if ram else "CPU"
        if problem:
            description += f"; GPU not used: {problem}"
    return description


def _touch(device: object) -> None:
    import torch
    import torch.nn.functional as F

    pixels = torch.zeros(1, 3, 32, 32, device=device)  # type: ignore[call-overload]
    F.conv2d(pixels, torch.zeros(3, 3, 3, 3, device=device))  # type: ignore[call-overload]
    torch.fft.rfft2(pixels)
    if getattr(device, "type", "") == "cuda":
        torch.cuda.synchronize()


def _system_ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0
