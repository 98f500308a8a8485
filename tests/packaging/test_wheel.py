"""The built wheel carries what the installed window needs: theme, icons, model catalog."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "studio", "resources", "models")


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The names in a wheel built from a copy of the checkout (the checkout stays clean)."""
    tree = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    code = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=tree, check=True, capture_output=True
    )
    (wheel,) = out.glob("studio-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_every_file_the_theme_refers_to_is_in_the_wheel(wheel_files: set[str]) -> None:
    qss = (ROOT / "resources" / "theme" / "dark.qss").read_text(encoding="utf-8")
    referred = set(re.findall(r"@THEME@/([\w.-]+)", qss))
    assert {"arrow-down.svg", "arrow-up.svg"} <= referred
    theme = {Path(name).name for name in wheel_files if "/data/share/studio/theme/" in name}
    assert "dark.qss" in theme
    assert referred <= theme, f"missing from the wheel: {sorted(referred - theme)}"


def test_the_wheel_carries_the_app_icon_and_the_window_code(wheel_files: set[str]) -> None:
    shared = {Path(name).name for name in wheel_files if "/data/share/studio/" in name}
    assert {"studio.svg", "studio.desktop", "catalog.toml"} <= shared
    assert "studio/ui/main_window.py" in wheel_files
