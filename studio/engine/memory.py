"""Device memory: how much is free, giving it back, and telling memory failures apart.

Out-of-memory failures (PyTorch's own, and the CUDA libraries' allocation failures) are
recoverable with smaller tiles; unrecoverable GPU errors (an illegal address, the display
watchdog) leave the CUDA context unusable until the program restarts.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_OUT_OF_MEMORY = (
    "out of memory",
    "can't allocate memory",
    "cudnn_status_not_enough_workspace",
    "cudnn_status_alloc_failed",
    "cublas_status_alloc_failed",
    "cufft_alloc_failed",
    "cusolver_status_alloc_failed",
)
_UNRECOVERABLE = (
    "illegal memory access",
    "illegal instruction",
    "misaligned address",
    "unspecified launch failure",
    "launch timed out",
    "device-side assert",
    "hardware stack error",
    "uncorrectable ecc error",
)


def free_bytes(device: torch.device) -> int:
    """Memory a job may use now: CUDA's free memory plus what PyTorch holds unused, or the
    RAM the OS reports available."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    return available_ram()


def available_ram() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def release_memory() -> None:
    """Collect garbage and hand PyTorch's cached GPU memory back to the driver.

    Call it outside any `except` block: a live traceback keeps the failed step's tensors."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        # A broken context cannot give memory back; there is nothing more to do then.
        with contextlib.suppress(RuntimeError):
            torch.cuda.empty_cache()


def is_out_of_memory(err: BaseException) -> bool:
    """PyTorch's out-of-memory error, or a CUDA library's allocation failure."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(err, torch.OutOfMemoryError):
        return True
    message = str(err).lower()
    return isinstance(err, RuntimeError) and any(text in message for text in _OUT_OF_MEMORY)


def is_unrecoverable_gpu_error(err: BaseException) -> bool:
    """A CUDA error after which the GPU context is unusable until Studio restarts."""
    message = str(err).lower()
    return isinstance(err, RuntimeError) and any(text in message for text in _UNRECOVERABLE)


def first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__
