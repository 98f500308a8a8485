"""Read a checkpoint's tensors without ever executing code stored in it."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import ModelError

if TYPE_CHECKING:
    import torch

StateDict = dict[str, "torch.Tensor"]

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".model", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)
SUPPORTED_SUFFIXES = PICKLE_SUFFIXES + SAFETENSORS_SUFFIXES

# Containers that trainers wrap a state dict in, most specific first.
_WRAPPER_KEYS = (
    "params_ema",
    "params",
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "generator",
)
_PREFIXES = ("module.", "model_ema.", "netG.", "generator.")
# A zip checkpoint may inflate to this much more than its size on disk (torch stores tensors
# uncompressed, so real ones inflate to about 1x).
_INFLATE_RATIO = 4
_INFLATE_ALLOWANCE = 16 << 20


def read_state_dict(path: Path) -> StateDict:
    """The tensors of a `.pth/.pt/.ckpt/.model/.bin` or `.safetensors` file, keys canonicalised.

    Pickles are read with torch's weights-only unpickler: a file that needs any code to
    load is refused with ModelError("pickle needs code execution: refused").
    """
    if not path.is_file():
        raise ModelError(f"Model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        raw: Any = _read_safetensors(path)
    elif suffix in PICKLE_SUFFIXES:
        raw = _read_pickle(path)
    else:
        known = ", ".join(SUPPORTED_SUFFIXES)
        raise ModelError(f"Unsupported model file type {suffix or '(none)'}: use one of {known}")
    return canonicalize(unwrap(raw, path))


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{path.name} is not a readable safetensors file: {err}") from None


def _read_pickle(path: Path) -> Any:
    import torch

    if zipfile.is_zipfile(path):
        check_archive_sizes(path)
    if zipfile.is_zipfile(path) and _is_torchscript(path):
        raise ModelError(
            f"{path.name} is a TorchScript archive, which carries code: refused. "
            "Use the checkpoint's .pth or .safetensors release."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ModelError(f"{path.name}: pickle needs code execution: refused") from None
        raise ModelError(
            f"{path.name} is damaged or not a checkpoint: {_first_line(err)}"
        ) from None
    except (RuntimeError, EOFError, ValueError, TypeError, OSError, KeyError, IndexError) as err:
        raise ModelError(
            f"{path.name} is damaged or not a checkpoint: {_first_line(err)}"
        ) from None


def check_archive_sizes(path: Path) -> None:
    """Refuse a zip checkpoint whose members would inflate far beyond the file (a zip bomb).

    torch stores tensors uncompressed, so a real checkpoint inflates to about its own size;
    the declared sizes are checked before anything is decompressed.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
        size = path.stat().st_size
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        reason = _first_line(err)
        raise ModelError(f"{path.name} is damaged or not a checkpoint: {reason}") from None
    if inflated > _INFLATE_ALLOWANCE + _INFLATE_RATIO * size:
        raise ModelError(
            f"{path.name} would inflate to {inflated / 1e6:.0f} MB from {size / 1e6:.1f} MB "
            "(a compressed archive bomb): refused"
        )


def _is_torchscript(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 2)[1:2] == ["code"] for name in archive.namelist())


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def unwrap(raw: Any, path: Path) -> StateDict:
    """The state dict inside a trainer's checkpoint dict (`state_dict`, `params_ema`, ...)."""
    import torch

    current = raw
    for _ in range(3):
        if not isinstance(current, dict):
            break
        tensors = {k: v for k, v in current.items() if isinstance(v, torch.Tensor)}
        if tensors and len(tensors) >= len(current) / 2:
            return {str(k): v for k, v in tensors.items()}
        inner = next((current[k] for k in _WRAPPER_KEYS if isinstance(current.get(k), dict)), None)
        if inner is None:
            break
        current = inner
    raise ModelError(f"{path.name} holds no network weights (no state dict found)")


def canonicalize(state: StateDict) -> StateDict:
    """Strip DataParallel/EMA prefixes shared by every key."""
    for prefix in _PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state
