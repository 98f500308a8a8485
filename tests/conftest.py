"""Shared fixtures: seeded RNGs (Python, numpy, torch) and a private STUDIO_HOME per test."""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import sys

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")  # seeded when loaded; never imported here for the UI's sake
    if torch is not None:
        torch.manual_seed(0)
    home = tmp_path_factory.mktemp("studio_home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.delenv("STUDIO_MODELS_DIR", raising=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def available_devices() -> list[str]:
    """The CPU, and CUDA when this machine has a GPU."""
    if importlib.util.find_spec("torch") is None:
        return ["cpu"]
    torch = importlib.import_module("torch")
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


@pytest.fixture(params=available_devices())
def device(request: pytest.FixtureRequest) -> str:
    """Each engine test that takes it runs on every device available (CPU always)."""
    name: str = request.param
    return name
