"""Tiny checkpoints and a stand-in catalog for the model-manager tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.models import _catalog as catalog_module
from studio.engine.models._catalog import CatalogEntry


def save_tiny_dncnn(path: Path, seed: int = 0) -> Path:
    """A randomly initialised KAIR-layout DnCNN (8 channels, 5 layers), as spandrel expects."""
    import torch
    from spandrel.architectures.DnCNN import DnCNN

    torch.manual_seed(seed)
    state = DnCNN(in_nc=1, out_nc=1, nc=8, nb=5).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.fixture
def tiny_dncnn(tmp_path: Path) -> Path:
    return save_tiny_dncnn(tmp_path / "src" / "my_dncnn.pth")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_for(data: bytes, **fields: object) -> CatalogEntry:
    """A catalog entry whose sha256 is that of `data` (override any field)."""
    values: dict[str, object] = {
        "id": "tiny-dncnn",
        "name": "Tiny DnCNN (test)",
        "task": "denoise",
        "architecture": "DnCNN",
        "file": "tiny_dncnn.pth",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "licence": "CC-BY-NC-4.0",
        "commercial_use": False,
        "source": "https://example.invalid/tiny",
        "params": {"strength": 0.5},
    }
    values.update(fields)
    return CatalogEntry.model_validate(values)


@pytest.fixture
def use_catalog(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Replace the shipped catalog with the given entries for one test."""

    def install(*entries: CatalogEntry) -> None:
        monkeypatch.setattr(catalog_module, "_shipped", lambda: tuple(entries))

    return install
