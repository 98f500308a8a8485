"""Checkpoint loading: every architecture detected from its published layout, unsafe or broken
files refused with a reason."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from studio.core.errors import ModelError
from studio.engine.neural.loader import load_model
from tests.engine.neural._tiny import SLOW_TINY, TINY, compact_sr, save


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("tiny")
    files = {}
    for name, tiny in TINY.items():
        state = tiny.build()
        assert tiny.published_key in state, f"{name} is not in its published layout"
        for fmt in ("pth", "safetensors"):
            files[(name, fmt)] = save(state, folder / fmt, name, fmt)
    return files


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("name", sorted(TINY))
def test_detected_with_its_task(
    tiny_files: dict[tuple[str, str], Path], name: str, fmt: str
) -> None:
    model = load_model(tiny_files[(name, fmt)])
    assert model.architecture == TINY[name].architecture
    assert model.task == TINY[name].task
    assert not model.module.training


@pytest.mark.slow
def test_lama_is_an_inpainting_model(tmp_path: Path) -> None:
    tiny = SLOW_TINY["spandrel_lama"]
    model = load_model(save(tiny.build(), tmp_path, "lama", "pth"))
    assert (model.architecture, model.task, model.tiling) == ("LaMa", "inpaint", "discouraged")
    assert "mask" in model.extras


def test_kair_ffdnet_wins_over_spandrel_fdncnn(tiny_files: dict[tuple[str, str], Path]) -> None:
    model = load_model(tiny_files[("ffdnet_kair", "pth")])
    assert model.architecture == "FFDNet" and "noise_level" in model.extras


def test_noise_level_changes_ffdnet_output(tiny_files: dict[tuple[str, str], Path]) -> None:
    from studio.engine.neural.model import Conditioning

    model = load_model(tiny_files[("ffdnet_ipol", "safetensors")])
    x = torch.rand(1, 1, 16, 16)
    low = model.forward(model.module, x, Conditioning(sigma=5 / 255))
    high = model.forward(model.module, x, Conditioning(sigma=50 / 255))
    assert not torch.allclose(low, high)


class _CreatesFile:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.target, "w"))


def test_pickle_that_runs_code_is_refused_and_does_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"weight": _CreatesFile(str(target))}, f)
    with pytest.raises(ModelError, match="pickle needs code execution: refused"):
        load_model(path)
    assert not target.exists()


def test_zip_checkpoint_with_code_is_refused_and_does_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _CreatesFile(str(target))}, path)
    with pytest.raises(ModelError, match="pickle needs code execution: refused"):
        load_model(path)
    assert not target.exists()


def test_truncated_checkpoint_is_refused(
    tiny_files: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    data = tiny_files[("dncnn_saoyan", "pth")].read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="damaged or not a checkpoint"):
        load_model(path)


def test_truncated_safetensors_is_refused(
    tiny_files: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    data = tiny_files[("zero_dce", "safetensors")].read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        load_model(path)


def test_wrong_shaped_weights_are_refused(tmp_path: Path) -> None:
    state = TINY["zero_dce"].build()
    state["e_conv5.weight"] = torch.zeros(4, 5, 3, 3)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError, match="do not fit"):
        load_model(path)


def test_super_resolution_serves_upscale(tmp_path: Path) -> None:
    path = save(compact_sr(), tmp_path, "sr", "safetensors")
    assert load_model(path).tasks == ("upscale",)


def test_unknown_layout_is_unsupported(tmp_path: Path) -> None:
    path = save({"encoder.layer.weight": torch.zeros(3, 3)}, tmp_path, "odd", "pth")
    with pytest.raises(ModelError, match="unsupported architecture"):
        load_model(path)


def test_adain_decoder_finds_its_encoder_beside_it(tmp_path: Path) -> None:
    bundle = TINY["adain"].build()
    decoder = {k.removeprefix("decoder."): v for k, v in bundle.items() if k.startswith("decoder.")}
    vgg = {k.removeprefix("vgg."): v for k, v in bundle.items() if k.startswith("vgg.")}
    decoder_path = save(decoder, tmp_path, "decoder", "pth")
    with pytest.raises(ModelError, match=r"vgg_normalised\.pth"):
        load_model(decoder_path)
    save(vgg, tmp_path, "vgg_normalised", "pth")
    assert load_model(decoder_path).architecture == "AdaIN"
    with pytest.raises(ModelError, match="VGG encoder"):
        load_model(tmp_path / "vgg_normalised.pth")


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "model.onnx"
    odd.write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="Unsupported model file type"):
        load_model(odd)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "absent.pth")
    assert not os.path.exists(tmp_path / "absent.pth")


@pytest.mark.parametrize(("norm", "task"), [("BiasFree", "denoise"), ("WithBias", "deblur")])
def test_restormer_task_follows_its_layer_norm(norm: str, task: str) -> None:
    """Only when the user installed spandrel_extra_arches (non-commercial architecture code)."""
    extra = pytest.importorskip("spandrel_extra_arches.architectures.Restormer")
    from studio.engine.neural.loader import detect

    module = extra.Restormer(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                             heads=[1, 1, 1, 1], LayerNorm_type=norm)  # fmt: skip
    model = detect(module.state_dict())
    assert (model.architecture, model.task) == ("Restormer", task)
    assert "non-commercial" in model.licence_note


def test_subnormal_weights_are_flushed(tmp_path: Path) -> None:
    """Zero-DCE's published weights hold thousands of subnormals that slow CPUs tenfold."""
    state = TINY["zero_dce"].build()
    state["e_conv2.weight"][0, 0, 0, 0] = 1e-40
    model = load_model(save(state, tmp_path, "subnormal", "pth"))
    weight = model.module.state_dict()["e_conv2.weight"]
    assert weight[0, 0, 0, 0] == 0.0
    torch.testing.assert_close(weight[1:], state["e_conv2.weight"][1:])
