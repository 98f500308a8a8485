"""The layer contracts hold: import-linter's, and no torch until an engine actually runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "spandrel")


def _lint_imports() -> str:
    beside_python = Path(sys.executable).parent / "lint-imports"
    found = beside_python if beside_python.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed: install the dev extra")
    return str(found)


def test_import_linter_contracts_are_kept():
    result = subprocess.run(
        [_lint_imports()], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_building_the_registry_does_not_import_torch():
    loaded = _modules_after("from studio.engine.registry import build_registry\nbuild_registry()")
    assert "studio.engine.registry" in loaded  # the probe did import it
    assert not loaded & set(HEAVY)


def test_core_imports_no_heavy_or_gui_library():
    loaded = _modules_after("import studio.core.imageio, studio.core.tiling, studio.core.protocol")
    assert not loaded & {*HEAVY, "cv2", "PySide6", "scipy"}
