"""Paths that would lose data or hang a job, through the `studio` command (issue 16).

- `-o` naming any file the job reads (image, mask, region, style, hints, kernel, recipe), in any
  spelling (relative, absolute, symlink, hard link), is refused with one exit code: 2.
- A FIFO, folder or device as any input is refused with exit 3 without blocking; in a batch
  the other files are still done.
- A parent of the output that is a file is named as such.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.imageio import reading
from tests.reliability.helpers import error_line, fifo_watchdog, leftovers
from tests.reliability.inputs import digest

SIZE = (12, 16)


def _picture(path: Path, seed: int, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = SIZE if channels is None else (*SIZE, channels)
    PILImage.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def _square(path: Path) -> Path:
    """A grey mask selecting a square in the middle."""
    samples = np.zeros(SIZE, np.uint8)
    samples[3:8, 4:10] = 255
    PILImage.fromarray(samples).save(path)
    return path


# role -> (task and engine, the option naming the file, maker of the file)
ROLES: dict[str, tuple[list[str], str, Callable[[Path], Path]]] = {
    "mask": (["inpaint", "--engine", "telea"], "--mask", _square),
    "region": (["denoise", "--engine", "gaussian"], "--region", _square),
    "style": (["style", "--engine", "color_transfer"], "--style", lambda p: _picture(p, 2)),
    "hints": (["colorize", "--engine", "levin"], "--hints", lambda p: _picture(p, 3, "RGBA")),
    "kernel": (["degrade", "--engine", "blur"], "--param", _square),
}


def _job(folder: Path, role: str) -> tuple[list[str], Path]:
    """(argv without -o, the file of `role`) for a job on photo.png in `folder`."""
    (task, *engine), option, make = ROLES[role]
    photo = _picture(folder / "photo.png", 1)
    aux = make(folder / f"{role}.png")
    value = f"kernel={aux}" if option == "--param" else str(aux)
    return ["run", task, str(photo), *engine, option, value], aux


def _spell(folder: Path, target: Path, spelling: str) -> str:
    """Another way to name `target` for `-o`."""
    if spelling == "relative":
        return os.path.relpath(target)
    if spelling == "dotted":
        return str(folder / "sub" / ".." / target.name)
    if spelling == "symlink":
        (folder / "link.png").symlink_to(target)
        return str(folder / "link.png")
    if spelling == "hardlink":
        os.link(target, folder / "hard.png")
        return str(folder / "hard.png")
    return str(target)


SPELLINGS = ["absolute", "relative", "dotted", "symlink", "hardlink"]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("role", ["input", *ROLES])
def test_an_output_naming_a_file_the_job_reads_is_exit_2_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], role: str, spelling: str
) -> None:
    (tmp_path / "sub").mkdir()
    argv, aux = _job(tmp_path, "mask" if role == "input" else role)
    target = tmp_path / "photo.png" if role == "input" else aux
    output = _spell(tmp_path, target, spelling)
    before = {path.name: digest(path) for path in tmp_path.glob("*.png")}

    code = main([*argv, "-o", output])

    line = error_line(capsys.readouterr().err)
    assert code == 2, line
    assert target.name in line.partition(" is the ")[2], line
    assert {path.name: digest(path) for path in tmp_path.glob("*.png")} == before
    assert Path(output).is_symlink() == (spelling == "symlink")
    assert not list(tmp_path.glob(".*.part"))


def test_the_recipe_is_never_an_output_of_its_batch(tmp_path: Path) -> None:
    """A recipe saved where the batch writes, under an output's name, is not replaced."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    _picture(shoot / "photo.png", 1)
    out = tmp_path / "out"
    out.mkdir()
    recipe = out / "photo_denoise.png"  # an odd name, but the batch must not replace it
    recipe.write_text(json.dumps([{"task": "denoise", "engine": "gaussian"}]))
    mask = out / "photo_denoise_2.png"
    _square(mask)
    before = digest(recipe), digest(mask)

    argv = ["batch", "--recipe", str(recipe), str(shoot), "-o", str(out), "--region", str(mask)]
    assert main(argv) == 0

    assert (digest(recipe), digest(mask)) == before
    assert (out / "photo_denoise_3.png").is_file()


def test_an_output_folder_that_is_a_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _picture(tmp_path / "photo.png", 1)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    run = ["run", "denoise", str(photo), "-o", str(blocker / "out.png"), "--engine", "gaussian"]
    assert main(run) == 2
    assert f"{blocker} is a file, not a folder" in error_line(capsys.readouterr().err)
    batch = ["batch", "denoise", str(photo), "-o", str(blocker), "--engine", "gaussian"]
    assert main(batch) == 2
    assert "is a file, not a folder" in error_line(capsys.readouterr().err)
    assert blocker.read_text() == "not a folder"


# --- FIFOs, folders and devices as inputs ------------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


FIFO_ROLES = ["image", "mask", "style", "region", "hints", "kernel", "recipe"]


def _argv_with_fifo(folder: Path, role: str, fifo: Path) -> list[str]:
    photo = _picture(folder / "photo.png", 1)
    out = str(folder / "out.png")
    if role == "image":
        return ["run", "denoise", str(fifo), "-o", out, "--engine", "gaussian"]
    if role == "recipe":
        return ["batch", "--recipe", str(fifo), str(photo), "-o", str(folder / "out")]
    (task, *engine), option, _ = ROLES[role]
    value = f"kernel={fifo}" if option == "--param" else str(fifo)
    return ["run", task, str(photo), "-o", out, *engine, option, value]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("role", FIFO_ROLES)
def test_a_fifo_as_any_input_is_exit_3_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    fifo = _fifo(tmp_path / f"{role}.png")
    argv = _argv_with_fifo(tmp_path, role, fifo)

    with fifo_watchdog([fifo]) as blocked:
        code = main(argv)

    assert not blocked, "the job blocked reading the FIFO"
    line = error_line(capsys.readouterr().err)
    assert code == 3 and "not a regular file" in line and str(fifo) in line
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("special", "reason"), [("folder", "a folder, not a file"), ("device", "not a regular file")]
)
def test_a_folder_or_device_as_the_mask_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], special: str, reason: str
) -> None:
    mask = Path(os.devnull) if special == "device" else tmp_path / "masks"
    mask.mkdir(exist_ok=True) if special == "folder" else None
    photo = _picture(tmp_path / "photo.png", 1)
    argv = ["run", "inpaint", str(photo), "-o", str(tmp_path / "out.png"), "--mask", str(mask)]
    assert main([*argv, "--engine", "telea"]) == 3
    assert reason in error_line(capsys.readouterr().err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_in_a_batch_fails_alone_and_the_others_are_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = [_picture(tmp_path / f"{name}.png", seed) for seed, name in enumerate("ab")]
    fifo = _fifo(tmp_path / "pipe.png")
    out = tmp_path / "out"
    argv = ["batch", "denoise", str(photos[0]), str(fifo), str(photos[1]), "-o", str(out)]

    with fifo_watchdog([fifo]) as blocked:
        code = main([*argv, "--engine", "gaussian", "--json"])

    assert not blocked, "the batch blocked reading the FIFO"
    assert code == 3
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failed = [e for e in events if e["event"] == "failed"]
    assert [e["input"] for e in failed] == [str(fifo)]
    assert "not a regular file" in failed[0]["reason"]
    assert sorted(p.name for p in out.glob("*.png")) == ["a_denoise.png", "b_denoise.png"]
    assert (
        leftovers(out, keep=lambda p: p.suffix == ".png" or p.name.startswith(".studio-batch"))
        == []
    )


@pytest.mark.parametrize("error", [ValueError(0), OSError(0), KeyError(0), IndexError(0)])
def test_a_decoder_failing_without_words_gives_a_reason_in_words(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    """Issue 16 met "Cannot read ...: 0" in a batch: a decoder's bare number is no reason."""

    def fail(path: Path, limit: int) -> None:
        raise error

    monkeypatch.setitem(reading.DECODERS, "png", fail)
    photo = _picture(tmp_path / "photo.png", 1)
    argv = ["batch", "denoise", str(photo), "-o", str(tmp_path / "out"), "--json"]
    assert main([*argv, "--engine", "gaussian"]) == 3
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reason = next(e["reason"] for e in events if e["event"] == "failed")
    assert reason.endswith("the PNG file is damaged or stored in a way Studio cannot decode")
