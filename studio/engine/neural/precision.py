"""Which arithmetic a model runs in: float32, or float16/bfloat16 where that is safe.

Policy for `precision="auto"`: half precision only on a CUDA GPU, only for 8-bit outputs
(bfloat16 differs from float32 by several 8-bit levels, too coarse for 16-bit or float
photos), only in a precision the card supports natively, and only when this model's
half-precision result agrees with float32 to at least `MIN_AGREEMENT_DB` on the first tile
(measured once per model and device). Float32 runs with TF32 off unless the output is 8-bit.
'fp32', 'fp16' and 'bf16' force a precision. A model that fails in half precision (e.g.
LaMa's FFTs reject bfloat16) is remembered and runs in float32 from then on.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from studio.core.errors import UsageError
from studio.engine.neural.model import LoadedModel

if TYPE_CHECKING:
    import torch

MIN_AGREEMENT_DB = 45.0
PROBE_SIDE = 128  # the centre crop of the first tile on which agreement is measured

_agreement: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, float]] = (
    weakref.WeakKeyDictionary()
)
_float32_only: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively (CUDA: Ampere, sm_80, and newer)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu"


def auto_half_dtype(model: LoadedModel, device: torch.device) -> torch.dtype | None:
    """The half precision `model` supports on `device`, or None."""
    import torch

    if device.type != "cuda":
        return None
    if model.supports_half:
        return torch.float16
    if model.supports_bfloat16 and native_bfloat16(device):
        return torch.bfloat16
    return None


def forced_dtype(setting: str) -> torch.dtype | None:
    import torch

    choices = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    if setting not in choices:
        raise UsageError(f"Unknown precision {setting!r}: use auto, fp32, fp16 or bf16")
    return choices[setting]


def choose(
    model: LoadedModel, device: torch.device, setting: str, output_bits: int
) -> tuple[torch.dtype | None, bool]:
    """(half dtype or None for float32, whether agreement must still be measured)."""
    if model.module in _float32_only:
        return None, False
    if setting != "auto":
        return forced_dtype(setting), False
    if output_bits != 8:
        return None, False
    dtype = auto_half_dtype(model, device)
    if dtype is None:
        return None, False
    known = _agreement.get(model.module, {}).get(_key(device, dtype))
    if known is None:
        return dtype, True
    return (dtype if known >= MIN_AGREEMENT_DB else None), False


def remember_agreement(
    model: LoadedModel, device: torch.device, dtype: torch.dtype, psnr_db: float
) -> bool:
    """Store the measured agreement; whether it is good enough for half precision."""
    _agreement.setdefault(model.module, {})[_key(device, dtype)] = psnr_db
    return psnr_db >= MIN_AGREEMENT_DB


def remember_float32_only(model: LoadedModel) -> None:
    _float32_only.add(model.module)


def agreement_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    """PSNR of `other` against `reference` (both in [0, 1]); inf when identical."""
    mse = float((reference.float() - other.float()).square().mean())
    if not math.isfinite(mse):
        return -math.inf
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _key(device: torch.device, dtype: torch.dtype) -> str:
    return f"{device}/{dtype}"


@contextlib.contextmanager
def float32_matmul(allow_tf32: bool) -> Iterator[None]:
    """Run float32 convolutions and matrix products in TF32 (faster, 10-bit mantissa) or in
    full IEEE float32, restoring the previous setting afterwards."""
    import torch

    wanted = "tf32" if allow_tf32 else "ieee"
    conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
    matmul = torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    conv.fp32_precision = wanted
    matmul.fp32_precision = wanted
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = before
