"""Read a checkpoint's tensors without ever executing code stored in it."""

from __future__ import annotations

import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import ModelError
from studio.engine.neural.torch_archive import RefusedGlobal, module_tensors, read_archive

if TYPE_CHECKING:
    import torch

StateDict = dict[str, "torch.Tensor"]

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".model", ".bin")
SAFETENSORS_SUFFIXES = (".safetensors",)
RELEASE_SUFFIXES = (".zip",)
SUPPORTED_SUFFIXES = PICKLE_SUFFIXES + SAFETENSORS_SUFFIXES + RELEASE_SUFFIXES
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
# LaMa's training checkpoint: the generator's keys, as spandrel's LaMa expects them.
_LAMA_TRAINING_KEY = "generator.model.1.bn_l.running_mean"

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

    Pickles are read with torch's weights-only unpickler; TorchScript archives, Lightning
    checkpoints and the LaMa authors' release zip with Studio's allow-list unpickler
    (`torch_archive`). Neither runs code: a file that needs any is refused with
    ModelError("pickle needs code execution: refused (it asks for <global>)").
    """
    if not path.is_file():
        raise ModelError(f"Model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        raw: Any = _read_safetensors(path)
    elif suffix in PICKLE_SUFFIXES + RELEASE_SUFFIXES:
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
        if path.suffix.lower() in RELEASE_SUFFIXES:
            return _read_release_zip(path)
        if _is_torchscript(path):
            return _read_torch_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            if zipfile.is_zipfile(path):
                # Lightning checkpoints name their bookkeeping classes: our allow-list reads
                # them as inert data, and names what it refuses.
                return _read_torch_archive(path)
            asked = _UNSUPPORTED_GLOBAL.search(str(err))
            named = f" (it asks for {asked.group(1)})" if asked else ""
            raise ModelError(f"{path.name}: pickle needs code execution: refused{named}") from None
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


def _read_torch_archive(path: Path) -> Any:
    """TorchScript module tensors, or a torch.save archive's data, read via the allow-list."""
    try:
        data, is_torchscript = read_archive(path)
    except RefusedGlobal as err:
        raise ModelError(
            f"{path.name}: pickle needs code execution: refused (it asks for {err.qualified_name})"
        ) from None
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        RuntimeError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        OSError,
        KeyError,
        IndexError,
    ) as err:
        raise ModelError(
            f"{path.name} is damaged or not a checkpoint: {_first_line(err)}"
        ) from None
    return module_tensors(data) if is_torchscript else data


def _read_release_zip(path: Path) -> Any:
    """An authors' release zip (LaMa's `big-lama.zip`): the Lightning checkpoint inside it."""
    with zipfile.ZipFile(path) as archive:
        checkpoints = sorted(
            (info for info in archive.infolist() if info.filename.endswith(".ckpt")),
            key=lambda info: (not info.filename.endswith("/best.ckpt"), info.filename),
        )
        if not checkpoints:
            raise ModelError(f"{path.name} holds no .ckpt checkpoint")
        with tempfile.TemporaryDirectory(prefix="studio-") as folder:
            inner = Path(folder) / "best.ckpt"
            with archive.open(checkpoints[0]) as source, inner.open("wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
            return _read_pickle(inner)


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
    """Strip DataParallel/EMA prefixes shared by every key; keep a LaMa trainer's generator."""
    if _LAMA_TRAINING_KEY in state:
        state = {
            "model." + key.removeprefix("generator."): value
            for key, value in state.items()
            if key.startswith("generator.")
        }
    for prefix in _PREFIXES:
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state
