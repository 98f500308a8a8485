"""TorchScript archives and LaMa's release zip, read with the allow-list unpickler.

A LaMa network with random weights is saved in IOPaint's layout (a traced TorchScript archive)
and the authors' layout (a Lightning `best.ckpt` inside `big-lama.zip`); both must run through
`studio run inpaint --model` like spandrel's own loader on the plain state dict. Crafted
archives naming code must be refused by name and must not run it.
"""

from __future__ import annotations

import pickle
import sys
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.errors import ModelError
from studio.engine.neural.loader import load_model
from studio.engine.neural.safeload import read_state_dict

SIZE = 64


class _Lama:
    """One random LaMa network, its image/mask pair and spandrel's own result on them."""

    def __init__(self) -> None:
        from spandrel import ModelLoader
        from spandrel.architectures.LaMa import LaMa

        torch.manual_seed(0)
        self.network = LaMa(in_nc=4, out_nc=3).eval()
        self.state = self.network.state_dict()
        rng = np.random.default_rng(3)
        self.photo = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
        self.mask = np.zeros((SIZE, SIZE), np.uint8)
        self.mask[20:40, 16:44] = 255
        descriptor = ModelLoader().load_from_state_dict(self.state).eval()
        image = torch.from_numpy(self.photo).permute(2, 0, 1)[None].float() / 255
        mask = torch.from_numpy(self.mask)[None, None].float() / 255
        with torch.no_grad():
            out = descriptor(image, mask)
        self.expected = out[0].permute(1, 2, 0).clamp(0, 1).numpy()


@pytest.fixture(scope="module")
def lama() -> _Lama:
    return _Lama()


@pytest.fixture(scope="module")
def lama_files(lama: _Lama, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lama")
    return {
        "torchscript": _traced(lama, folder / "big-lama.pt"),
        "release zip": _release_zip(lama.state, folder / "big-lama.zip"),
    }


def _traced(lama: _Lama, path: Path) -> Path:
    image = torch.rand(1, 3, SIZE, SIZE)
    mask = (torch.rand(1, 1, SIZE, SIZE) > 0.5).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated; IOPaint used it
        torch.jit.trace(lama.network, (image, mask), check_trace=False).save(str(path))
    return path


def _lightning_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """LaMa's trainer layout: `generator.*` beside a discriminator and a perceptual loss."""
    generator = {"generator." + k.removeprefix("model."): v for k, v in state.items()}
    others = {
        "discriminator.model0.0.weight": torch.zeros(8, 3, 4, 4),
        "loss_resnet_pl.impl.conv1.weight": torch.zeros(8, 3, 7, 7),
    }
    callback = _fake_global(_CALLBACKS, "ModelCheckpoint")
    return {
        "epoch": 39,
        "global_step": 1000,
        "pytorch-lightning_version": "1.2.9",
        "state_dict": {**generator, **others},
        "callbacks": {callback: {"best_model_score": torch.tensor(0.5)}},
        "lr_schedulers": [],
    }


_CALLBACKS = "pytorch_lightning.callbacks.model_checkpoint"
_LIGHTNING = ("pytorch_lightning", "pytorch_lightning.callbacks", _CALLBACKS)


def _fake_global(module_name: str, name: str) -> type:
    """A class pickled under `module_name.name`, a module that is not installed here."""
    for package in _LIGHTNING:
        sys.modules[package] = types.ModuleType(package)  # only while saving
    cls = type(name, (), {"__module__": module_name})
    setattr(sys.modules[module_name], name, cls)
    return cls


def _release_zip(state: dict[str, torch.Tensor], path: Path) -> Path:
    checkpoint = path.with_name("best.ckpt")
    try:
        torch.save(_lightning_checkpoint(state), checkpoint)
    finally:
        for package in _LIGHTNING:
            sys.modules.pop(package, None)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("big-lama/config.yaml", "generator:\n  kind: ffc_resnet\n")
        archive.write(checkpoint, "big-lama/models/best.ckpt")
    checkpoint.unlink()
    return path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["torchscript", "release zip"])
def test_lama_layouts_hold_the_networks_exact_weights(
    lama: _Lama, lama_files: dict[str, Path], layout: str
) -> None:
    state = read_state_dict(lama_files[layout])
    assert set(state) == set(lama.state)
    assert all(torch.equal(state[key], value) for key, value in lama.state.items())


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["torchscript", "release zip"])
def test_lama_inpaints_through_the_cli_like_spandrel(
    lama: _Lama, lama_files: dict[str, Path], layout: str, tmp_path: Path
) -> None:
    photo, mask, out = tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "out.png"
    PILImage.fromarray(lama.photo).save(photo)
    PILImage.fromarray(lama.mask).save(mask)
    model = str(lama_files[layout])
    args = ["run", "inpaint", str(photo), "--mask", str(mask), "--model", model, "-o", str(out)]
    assert main([*args, "--device", "cpu"]) == 0
    result = np.asarray(PILImage.open(out).convert("RGB"), np.float64) / 255
    assert _psnr(result, lama.expected) >= 40.0
    hole = lama.mask > 0
    assert _psnr(result[hole], lama.expected[hole]) >= 40.0


@pytest.mark.slow
def test_lama_torchscript_is_detected_as_inpainting(lama_files: dict[str, Path]) -> None:
    model = load_model(lama_files["torchscript"])
    assert (model.architecture, model.task) == ("LaMa", "inpaint")


# ---------------------------------------------------------------- hostile archives


class _Sentinel:
    """Unpickling this creates `target`: the side effect a refused file must never have."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.target, "w"))


class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (self.command,))


def _torchscript_with(payload: object, path: Path) -> Path:
    """A zip in TorchScript's layout whose data.pkl holds `payload` beside a weight."""
    data = pickle.dumps({"weight": torch.zeros(1).numpy().tolist(), "hook": payload}, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/code/__torch__/model.py", "def forward(self, x):\n  return x\n")
        archive.writestr("archive/version", "3\n")
    return path


def test_torchscript_naming_os_system_is_refused_and_never_runs(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    path = _torchscript_with(_System(f"touch {target}"), tmp_path / "evil.pt")
    with pytest.raises(ModelError, match=r"refused \(it asks for (os|posix)\.system\)"):
        load_model(path)
    assert not target.exists()


def test_torchscript_opening_a_file_is_refused_by_name(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    path = _torchscript_with(_Sentinel(target), tmp_path / "evil.pt")
    with pytest.raises(ModelError, match=r"refused \(it asks for (builtins|io)\.open\)"):
        load_model(path)
    assert not target.exists()


def test_lightning_checkpoint_with_code_is_refused_by_name(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    checkpoint = tmp_path / "best.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _Sentinel(target)}, checkpoint)
    path = tmp_path / "big-lama.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(checkpoint, "big-lama/models/best.ckpt")
    with pytest.raises(ModelError, match=r"refused \(it asks for (builtins|io)\.open\)"):
        load_model(path)
    assert not target.exists()


def test_storage_whose_bytes_do_not_match_its_size_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.jit.script(torch.nn.Conv2d(1, 1, 3)).save(str(path))
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data[:-4] if "/data/" in info.filename else data)
    with pytest.raises(ModelError, match="damaged or not a checkpoint"):
        read_state_dict(broken)


def test_scripted_module_gives_its_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(1)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    path = tmp_path / "scripted.pt"
    torch.jit.script(network).save(str(path))
    state = read_state_dict(path)
    expected = network.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[key], value) for key, value in expected.items())
