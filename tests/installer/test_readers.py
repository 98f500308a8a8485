"""The image format readers come with every install: regular dependencies, pinned for the
installer to versions whose wheels exist for Linux, macOS (Apple silicon) and Windows.

Checked against PyPI on 2026-12-07 with `pip install --dry-run --only-binary=:all:` for
CPython 3.11, 3.12 and 3.13 on manylinux_2_28 x86_64 and aarch64, macosx_11_0_arm64 and
win_amd64: every pin below has a wheel on each. (rawpy has no Intel-Mac wheel after 0.25.1,
nor torch after 2.2: Intel Macs are not an install target.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from studio.core.imageio import SUPPORTED_EXTENSIONS

ROOT = Path(__file__).resolve().parents[2]
READERS = {  # distribution: a suffix it reads (or writes) for Studio
    "rawpy": ".nef",
    "pillow-heif": ".heic",
    "imagecodecs": ".jxl",
    "pillow": ".avif",
    "openexr": ".exr",
    "tifffile": ".tif",
}


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(Requirement(line).name) for line in project["dependencies"]}


def _pins() -> dict[str, str]:
    lines = (ROOT / "installer" / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==", 1) for line in lines if "==" in line)
    return {_name(name): version.strip() for name, version in pairs}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_each_format_reader_is_installed_with_studio_at_a_pinned_version(reader: str) -> None:
    assert READERS[reader] in SUPPORTED_EXTENSIONS
    assert reader in _dependencies()  # not an extra: the installer brings it
    assert re.fullmatch(r"\d+(\.\d+)+", _pins().get(reader, "")), f"{reader} is not pinned"


def test_the_pins_are_those_checked_for_wheels() -> None:
    pins = _pins()
    checked = {"rawpy": "0.28.0", "pillow-heif": "1.9.0", "imagecodecs": "2026.3.6"}
    assert {name: pins[name] for name in checked} == checked
