"""Hostile and broken model files: each is refused with a reason, by the loader, by
`studio run TASK --engine model --model FILE` (exit 4) and by `studio models import` (exit 4),
and nothing inside a checkpoint ever runs.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from safetensors.torch import save_file

from studio.cli.main import main
from studio.core.errors import ModelError
from studio.engine.models import installed_models
from studio.engine.neural.arches.dncnn_residual import ResidualDnCNN
from studio.engine.neural.arches.fast_style import TransformerNet
from studio.engine.neural.loader import load_model
from tests.reliability.helpers import error_line, leftovers, read_png
from tests.reliability.inputs import digest

MARKER_NAME = "payload_ran"


def _dncnn_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in ResidualDnCNN(3, 8, 4).state_dict().items()}


def _style_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in TransformerNet(width=4, blocks=1).state_dict().items()}


def _pth(state: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _safetensors(path: Path, state: dict[str, torch.Tensor]) -> bytes:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path.read_bytes()


class Payload:
    """Unpickling this runs code that creates a file (the classic malicious checkpoint)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _wrong_shapes(folder: Path) -> bytes:
    state = _dncnn_state()
    key = next(
        k
        for k, v in state.items()
        if k.endswith("weight") and v.ndim == 4 and k != "dncnn.0.weight"
    )
    out, inp, kh, kw = state[key].shape
    state[key] = torch.zeros(out + 3, inp, kh, kw)
    return _safetensors(folder / "scratch.safetensors", state)


def _huge_safetensors_header() -> bytes:
    return (
        struct.pack("<Q", 2**40) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    )


def _repacked_pth(
    state: object,
    edit_pickle: Callable[[bytes], bytes] = lambda data: data,
    add: Callable[[zipfile.ZipFile, str], None] = lambda archive, root: None,
) -> bytes:
    """A torch checkpoint's members copied into a new zip, its pickle edited, members added."""
    source = zipfile.ZipFile(io.BytesIO(_pth(state)))
    root = source.namelist()[0].split("/")[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member in source.infolist():
            content = source.read(member)
            if member.filename.endswith("data.pkl"):
                content = edit_pickle(content)
            archive.writestr(member.filename, content)
        add(archive, root)
    return out.getvalue()


def _add_bomb(archive: zipfile.ZipFile, root: str) -> None:
    """A deflated member of 96 MB of zeros (about 0.1 MB in the file)."""
    info = zipfile.ZipInfo(f"{root}/data/99")
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as member:
        for _ in range(96):
            member.write(bytes(1 << 20))


def _negative_storage(data: bytes) -> bytes:
    """The pickle of `{"w": torch.ones(3)}` with its storage claiming -3 elements."""
    storage = b"X\x03\x00\x00\x00cpuq\x06K\x03t"
    assert storage in data
    return data.replace(storage, storage[:-3] + b"J" + struct.pack("<i", -3) + b"t")


# name -> (file name, maker(folder, marker) -> bytes)
BAD_MODELS: dict[str, tuple[str, Callable[[Path, Path], bytes]]] = {
    "truncated-pth": ("cut.pth", lambda d, m: _pth(_dncnn_state())[:2000]),
    "truncated-safetensors": (
        "cut.safetensors",
        lambda d, m: _safetensors(d / "whole.safetensors", _dncnn_state())[:-500],
    ),
    "empty": ("empty.pth", lambda d, m: b""),
    "random-bytes": ("noise.pth", lambda d, m: np.random.default_rng(0).bytes(4096)),
    "safetensors-huge-header": ("header.safetensors", lambda d, m: _huge_safetensors_header()),
    "wrong-shapes-safetensors": ("shapes.safetensors", lambda d, m: _wrong_shapes(d)),
    "no-weights": ("trainer.pth", lambda d, m: _pth({"epoch": 3, "lr": 0.1})),
    "unknown-architecture": (
        "mystery.safetensors",
        lambda d, m: _safetensors(d / "s.safetensors", {"foo.weight": torch.ones(3, 3)}),
    ),
    "pickle-payload-zip": ("evil.pth", lambda d, m: _pth({"state_dict": Payload(m)})),
    "pickle-payload-beside-weights": (
        "evil_weights.pth",
        lambda d, m: _pth({**_dncnn_state(), "note": Payload(m)}),
    ),
    "pickle-payload-legacy": ("evil_legacy.pth", lambda d, m: pickle.dumps(Payload(m))),
    "zip-bomb": ("bomb.pth", lambda d, m: _repacked_pth(_dncnn_state(), add=_add_bomb)),
    "negative-storage-size": (
        "negative.pth",
        lambda d, m: _repacked_pth({"w": torch.ones(3)}, edit_pickle=_negative_storage),
    ),
}


def make_bad_model(folder: Path, case: str) -> tuple[Path, Path]:
    """(model file, marker file that its payload would create)."""
    name, maker = BAD_MODELS[case]
    marker = folder / MARKER_NAME
    path = folder / name
    path.write_bytes(maker(folder, marker))
    for scratch in ("whole.safetensors", "s.safetensors", "scratch.safetensors"):
        (folder / scratch).unlink(missing_ok=True)
    return path, marker


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(path)
    return path


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """Unpickled without protection, each payload does create its file (so the tests below
    prove something when it does not appear)."""
    for case in ("pickle-payload-zip", "pickle-payload-beside-weights", "pickle-payload-legacy"):
        path, marker = make_bad_model(tmp_path, case)
        data = path.read_bytes()
        if data.startswith(b"PK"):
            torch.load(io.BytesIO(data), weights_only=False)
        else:
            pickle.loads(data)  # proving the payload works
        assert marker.exists(), case
        marker.unlink()


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_the_loader_refuses_with_a_one_line_reason(tmp_path: Path, case: str) -> None:
    path, marker = make_bad_model(tmp_path, case)
    with pytest.raises(ModelError) as refused:
        load_model(path)
    message = str(refused.value)
    assert message.strip() and "\n" not in message
    if "payload" in case:
        assert "refused" in message
    if case == "zip-bomb":
        assert "inflate" in message, "refused only after decompressing"
    assert not marker.exists(), "the checkpoint ran code"


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_the_command_refuses_with_exit_4(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path, marker = make_bad_model(tmp_path, case)
    before = digest(photo)
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "model", "--model", str(path)]
    assert main(argv) == 4
    error_line(capsys.readouterr().err)
    assert not marker.exists(), "the checkpoint ran code"
    assert not out.exists() and digest(photo) == before


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_the_model_manager_refuses_to_import_with_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path, marker = make_bad_model(tmp_path, case)
    before = digest(path)
    assert main(["models", "import", str(path)]) == 4
    err = capsys.readouterr().err
    assert path.name in err and "Traceback" not in err
    assert not marker.exists(), "the checkpoint ran code"
    assert installed_models() == [] and digest(path) == before


@pytest.fixture
def style_model(tmp_path: Path) -> Path:
    path = tmp_path / "candy.pth"
    path.write_bytes(_pth(_style_state()))
    return path


def test_a_style_model_is_not_a_denoiser(
    tmp_path: Path, photo: Path, style_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert load_model(style_model).task == "style"  # a sound file, for another task
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "model"]
    code = main([*argv, "--model", str(style_model)])
    line = error_line(capsys.readouterr().err)
    assert "style" in line and "denoise" in line
    assert not out.exists()
    assert code == 4, f"refused, but as exit {code}: a wrong model is a model problem"


def test_a_sound_model_runs_after_refusals(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refusals leave nothing behind that stops the next, sound model."""
    good = tmp_path / "dncnn.pth"
    good.write_bytes(_pth(_dncnn_state()))
    for case in ("truncated-pth", "pickle-payload-zip"):
        bad, _ = make_bad_model(tmp_path, case)
        argv = ["run", "denoise", str(photo), "-o", str(tmp_path / "x.png"), "--engine", "model"]
        assert main([*argv, "--model", str(bad)]) == 4
    out = tmp_path / "out.png"
    argv = ["run", "denoise", str(photo), "-o", str(out), "--engine", "model", "--model", str(good)]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.is_file() and leftovers(tmp_path, keep=lambda p: p.suffix != ".part") == []


def test_giving_a_model_runs_the_model(
    tmp_path: Path, photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`studio run denoise photo.png --model PATH -o out.png` (issue 4's command line) uses it."""
    good = tmp_path / "dncnn.pth"
    good.write_bytes(_pth(_dncnn_state()))
    implied, explicit = tmp_path / "implied.png", tmp_path / "explicit.png"
    assert main(["run", "denoise", str(photo), "-o", str(implied), "--model", str(good)]) == 0
    argv = ["run", "denoise", str(photo), "-o", str(explicit), "--engine", "model"]
    assert main([*argv, "--model", str(good)]) == 0
    np.testing.assert_array_equal(read_png(implied), read_png(explicit))
