"""Tensors out of a torch zip archive (TorchScript `.pt` or `torch.save` file), running no code.

A torch archive is a zip holding `<root>/data.pkl` (a pickle), `<root>/data/<key>` (raw tensor
bytes) and, for TorchScript, `<root>/code/` (the program, which is never read here). The pickle is
read with an unpickler whose only globals are an explicit allow-list: tensor rebuilds, storage
types, dtypes, plain containers and `OrderedDict`. TorchScript's own classes (`__torch__.*`)
and the bookkeeping classes of training checkpoints (Lightning callbacks, OmegaConf
configurations) become inert attribute holders: their names are never imported. Every other
global is refused with its name.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Module prefixes whose classes are only data containers in a checkpoint: built as Holders.
HOLDER_MODULES = ("__torch__.", "pytorch_lightning.", "lightning.", "omegaconf.")
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "UntypedStorage": "uint8",
}
_DTYPE_NAMES = frozenset({"float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"})


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class Holder:
    """An inert stand-in for a TorchScript module or checkpoint bookkeeping object."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["state"] = state


class _StorageType:
    def __init__(self, dtype_name: str) -> None:
        self.dtype_name = dtype_name


def _holder_class(qualified_name: str) -> type[Holder]:
    return type(qualified_name.rsplit(".", 1)[-1], (Holder,), {"qualified_name": qualified_name})


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any, *_: Any) -> Any:
    import torch

    return torch.empty(0, dtype=storage.dtype).set_(storage.untyped_storage(), offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data


def _same(value: Any, *_: Any) -> Any:
    return value


def _allowed(module: str, name: str) -> Any:
    """The object a pickle may name, or None when it is not on the allow-list."""
    import torch

    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
        return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
        return _StorageType(_STORAGE_DTYPES[name])
    if module == "torch" and name in _DTYPE_NAMES:
        return getattr(torch, name)
    if module == "torch.jit._pickle" and (name == "restore_type_tag" or name.startswith("build_")):
        return _same  # TorchScript's list/type helpers: the value itself is the data
    if (module, name) in {("collections", "OrderedDict"), ("typing", "OrderedDict")}:
        return collections.OrderedDict
    if module == "builtins" and name in ("set", "frozenset"):
        return {"set": set, "frozenset": frozenset}[name]
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], load_storage: Callable[[Any], Any]) -> None:
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        allowed = _allowed(module, name)
        if allowed is not None:
            return allowed
        if module.startswith(HOLDER_MODULES):
            return _holder_class(f"{module}.{name}")
        raise RefusedGlobal(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return self._load_storage(pid)


class TorchArchive:
    """One torch zip archive: its root folder and a reader for its storages."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if not pickles:
            raise pickle.UnpicklingError("no data.pkl: not a torch archive")
        self._archive = archive
        self._root = pickles[0].removesuffix("data.pkl")
        order = self._read_optional("byteorder")
        if order not in (None, b"little"):
            raise pickle.UnpicklingError(f"byte order {order!r} is not supported")

    @property
    def is_torchscript(self) -> bool:
        prefix = self._root + "code/"
        return any(name.startswith(prefix) for name in self._archive.namelist())

    def load(self) -> Any:
        """The archive's data.pkl, read through the allow-list."""
        with self._archive.open(self._root + "data.pkl") as data:
            return _RestrictedUnpickler(data, self._storage).load()

    def _read_optional(self, name: str) -> bytes | None:
        try:
            return self._archive.read(self._root + name).strip()
        except KeyError:
            return None

    def _storage(self, pid: Any) -> torch.Tensor:
        import torch

        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:80]}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int):
            raise pickle.UnpicklingError("storage of an unknown type")
        dtype = getattr(torch, storage_type.dtype_name)
        info = self._archive.getinfo(f"{self._root}data/{key}")
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if info.file_size != numel * itemsize:
            raise pickle.UnpicklingError(f"storage {key} has {info.file_size} bytes, not {numel}")
        if info.file_size == 0:
            return torch.empty(0, dtype=dtype)
        buffer = bytearray(info.file_size)
        with self._archive.open(info) as member:
            member.readinto(buffer)  # type: ignore[attr-defined]
        return torch.frombuffer(buffer, dtype=dtype)


def read_archive(path: Path) -> tuple[Any, bool]:
    """The unpickled data.pkl of a torch zip archive and whether it is TorchScript.

    Raises RefusedGlobal (a pickle.UnpicklingError) naming a global outside the allow-list.
    """
    with zipfile.ZipFile(path) as archive:
        reader = TorchArchive(archive)
        return reader.load(), reader.is_torchscript


def module_tensors(root: Any) -> dict[str, torch.Tensor]:
    """The tensors a TorchScript module tree holds, keyed like `state_dict()` keys."""
    import torch

    found: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def walk(node: Any, prefix: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for name, value in vars(node).items():
            if isinstance(value, torch.Tensor):
                found[prefix + name] = value
            elif isinstance(value, Holder):
                walk(value, f"{prefix}{name}.")

    if isinstance(root, Holder):
        walk(root, "")
    return found
