"""The executor's model cache: the two most recently used models stay loaded, on the job's
device; an evicted model's memory is handed back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.protocol import RunContext
from studio.engine.neural import executor
from studio.engine.neural.executor import get_model
from tests.engine.neural._tiny import TINY, save


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("cache")
    state = TINY["zero_dce"].build()
    return [save(state, folder, name, "safetensors") for name in ("a", "b", "c")]


def _counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    loads: list[str] = []
    real = executor.load_model
    monkeypatch.setattr(executor, "load_model", lambda path: loads.append(path.stem) or real(path))
    return loads


def test_the_two_most_recently_used_models_stay_loaded(
    model_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = _counting_loads(monkeypatch)
    releases: list[int] = []
    monkeypatch.setattr(executor, "release_memory", lambda: releases.append(len(loads)))
    ctx = RunContext(device="cpu")
    a, b, c = model_files
    first = get_model(a, ctx)
    get_model(b, ctx)
    assert get_model(a, ctx) is first and loads == ["a", "b"]
    assert not releases
    get_model(c, ctx)  # b is now the least recently used: it goes
    assert releases == [3], "the evicted model's memory is handed back once"
    assert get_model(a, ctx) is first and get_model(c, ctx) is not first
    assert loads == ["a", "b", "c"]
    get_model(b, ctx)
    assert loads == ["a", "b", "c", "b"]


def test_the_model_is_put_on_the_jobs_device(
    model_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Models load on the CPU; the job's device ("meta" stands in for a GPU) gets them."""
    monkeypatch.setattr(executor, "resolve_device", lambda choice: torch.device("meta"))
    model = get_model(model_files[0], RunContext(device="cuda"))
    assert next(model.module.parameters()).device.type == "meta"


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(executor.ModelError, match="Model file not found"):
        get_model(tmp_path / "gone.safetensors", RunContext(device="cpu"))
