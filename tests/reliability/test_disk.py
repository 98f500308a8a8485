"""A full disk and a read-only output folder: a clear one-line error, the input intact, and no
partial file, through the real command.

Tests run as root in CI, where permissions do not stop writes, so failures are injected where
the operating system would report them (ENOSPC from a write or fsync, EACCES from creating
the temporary file), made real with a file-size limit (the kernel refuses the write, also
inside the C++ OpenEXR writer), and with a real read-only folder as an unprivileged user.
"""

from __future__ import annotations

import builtins
import ctypes
import errno
import io
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.imageio import WRITABLE_EXTENSIONS
from tests.reliability.helpers import error_line, leftovers, studio_process
from tests.reliability.inputs import digest

NO_SPACE = os.strerror(errno.ENOSPC)
FAST = ["--engine", "gaussian", "--param", "radius=0.5"]  # a light blur keeps files large


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(path)
    return path


def _only_input_left(folder: Path, photo: Path) -> None:
    assert leftovers(folder, keep=lambda p: p == photo or p.is_dir()) == []


class _FullDisk(io.BytesIO):
    """A file on a full disk: every write fails with ENOSPC (and it has no descriptor)."""

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, NO_SPACE)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing to Studio's temporary files fails as on a full disk."""
    real_open = io.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if str(file).endswith(".part") and any(flag in mode for flag in "wa+"):
            return _FullDisk()
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(builtins, "open", open_)


# EXR is written by OpenEXR's C++ code, out of Python's reach: the file-size limit covers it.
PYTHON_WRITTEN = sorted(ext for ext in WRITABLE_EXTENSIONS if ext != ".exr")


@pytest.mark.usefixtures("full_disk")
@pytest.mark.parametrize("suffix", PYTHON_WRITTEN)
def test_disk_full_while_writing_is_a_clear_error(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    before = digest(photo)
    out = tmp_path / f"result{suffix}"
    assert main(["run", "denoise", str(photo), "-o", str(out), *FAST]) == 3
    line = error_line(capsys.readouterr().err)
    assert line == f"studio: Cannot write {out}: {NO_SPACE}"
    assert digest(photo) == before
    _only_input_left(tmp_path, photo)


def test_disk_full_when_syncing_is_a_clear_error(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delayed allocation: the data fit in the cache, the disk refuses it at fsync."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "result.tif"
    assert main(["run", "denoise", str(photo), "-o", str(out), *FAST]) == 3
    assert error_line(capsys.readouterr().err) == f"studio: Cannot write {out}: {NO_SPACE}"
    _only_input_left(tmp_path, photo)


def test_read_only_folder_refusing_the_temporary_file_is_a_clear_error(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".part"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    before = digest(photo)
    out = tmp_path / "result.jpg"
    assert main(["run", "denoise", str(photo), "-o", str(out), *FAST]) == 3
    assert error_line(capsys.readouterr().err) == f"studio: Cannot write {out}: Permission denied"
    assert digest(photo) == before
    _only_input_left(tmp_path, photo)


def test_batch_on_a_full_disk_is_a_clear_error(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr(os, "fsync", fsync)
    before = digest(photo)
    code = main(["batch", "denoise", str(photo), "-o", str(tmp_path / "out"), *FAST])
    err = capsys.readouterr().err
    assert "Unexpected error" not in err and "Traceback" not in err
    assert NO_SPACE in err and code == 3
    assert digest(photo) == before


# --- real refusals by the kernel -------------------------------------------------------------

FILE_SIZE_LIMIT = 4096


def _file_size_limit() -> None:
    """In the child: the kernel refuses to grow any file past FILE_SIZE_LIMIT bytes (EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.mark.parametrize("suffix", sorted(WRITABLE_EXTENSIONS - {".jpe", ".jpeg", ".tiff"}))
def test_kernel_refusing_the_write_is_a_clear_error_in_every_format(
    tmp_path: Path, photo: Path, suffix: str
) -> None:
    before = digest(photo)
    assert photo.stat().st_size > FILE_SIZE_LIMIT
    out = tmp_path / f"result{suffix}"
    done = studio_process(
        ["run", "denoise", str(photo), "-o", str(out), *FAST],
        timeout=60,
        preexec_fn=_file_size_limit,
    )
    assert done.returncode == 3, done.stderr
    # A notice of what the format cannot hold (Radiance HDR: the EXIF) may come first.
    lines = [line for line in done.stderr.splitlines() if not line.startswith(f"{out.name}: ")]
    assert error_line("\n".join(lines)).startswith(f"studio: Cannot write {out}: ")
    assert digest(photo) == before
    _only_input_left(tmp_path, photo)


# --- a real read-only folder -----------------------------------------------------------------


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _without_permission_override() -> None:
    """In the child of a root process: drop the capabilities that let root ignore permissions."""
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if _LIBC.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


def _unprivileged(locked: Path) -> dict[str, Any]:
    """Popen arguments for a child whom `locked`'s permissions stop; skip where none can be."""
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:
        kwargs["preexec_fn"] = _without_permission_override
    probe = f"open({str(locked / 'probe')!r}, 'w')"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, **kwargs)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot start a child that permissions stop: {err}")
    if done.returncode == 0:
        pytest.skip("permissions do not stop writes here")
    return kwargs


@pytest.fixture
def read_only_setup(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, Any]]]:
    """(photo, read-only folder, Popen arguments) for a child that cannot write there."""
    photo = tmp_path / "photo.png"
    pixels = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(photo)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        yield photo, locked, _unprivileged(locked)
    finally:
        locked.chmod(0o755)


def _run_denied(args: list[str], kwargs: dict[str, Any]) -> Any:
    return studio_process(args, timeout=60, **kwargs)


def test_real_read_only_folder_is_a_clear_error(
    read_only_setup: tuple[Path, Path, dict[str, Any]],
) -> None:
    photo, locked, kwargs = read_only_setup
    before = digest(photo)
    out = locked / "result.png"
    done = _run_denied(["run", "denoise", str(photo), "-o", str(out), *FAST], kwargs)
    assert done.returncode == 3, done.stderr
    assert error_line(done.stderr) == f"studio: Cannot write {out}: Permission denied"
    assert digest(photo) == before
    assert list(locked.iterdir()) == []


def test_output_folder_that_cannot_be_created_is_a_clear_error(
    read_only_setup: tuple[Path, Path, dict[str, Any]],
) -> None:
    photo, locked, kwargs = read_only_setup
    out = locked / "new" / "result.png"
    done = _run_denied(["run", "denoise", str(photo), "-o", str(out), *FAST], kwargs)
    assert done.returncode == 3, done.stderr
    assert "Permission denied" in error_line(done.stderr)
    assert list(locked.iterdir()) == []


def test_batch_into_a_read_only_folder_is_a_clear_error(
    read_only_setup: tuple[Path, Path, dict[str, Any]],
) -> None:
    photo, locked, kwargs = read_only_setup
    before = digest(photo)
    done = _run_denied(["batch", "denoise", str(photo), "-o", str(locked), "--json", *FAST], kwargs)
    assert "Unexpected error" not in done.stderr and "Traceback" not in done.stderr
    assert done.returncode == 3, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert any("Permission denied" in json.dumps(event) for event in events)
    assert digest(photo) == before
    assert [p.name for p in locked.iterdir()] == []
