"""Safe loading: where a checkpoint's weights are found, and the zip-bomb bound."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from studio.core.errors import ModelError
from studio.engine.neural.safeload import check_archive_sizes, read_state_dict

ALLOWANCE, RATIO = 16 << 20, 4  # documented: 16 MiB plus 4 times the file's size


_STORED = bytes(range(256)) * 1000  # 0.256 MB kept as it is: the file's size shows in MB


def _zip(path: Path, zeros: int) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data/0", bytes(zeros), zipfile.ZIP_DEFLATED)
        archive.writestr("archive/data/1", _STORED, zipfile.ZIP_STORED)
    return path


def _bomb_at_the_bound(path: Path, extra: int) -> tuple[int, int]:
    """A zip inflating to `extra` bytes past 16 MiB + 4 x its own size: (inflated, size)."""
    zeros = ALLOWANCE
    for _ in range(10):  # the compressed size barely moves with the zeros' length
        size = _zip(path, zeros).stat().st_size
        wanted = ALLOWANCE + RATIO * size + extra - len(_STORED)
        if zeros == wanted:
            return zeros + len(_STORED), size
        zeros = wanted
    raise AssertionError("no fixed point")


def test_a_zip_may_inflate_to_16_mib_plus_4_times_its_size_and_not_a_byte_more(tmp_path):
    _bomb_at_the_bound(tmp_path / "fits.pth", 0)
    check_archive_sizes(tmp_path / "fits.pth")
    inflated, size = _bomb_at_the_bound(tmp_path / "bomb.pth", 1)
    expected = f"bomb.pth would inflate to {inflated / 1e6:.0f} MB from {size / 1e6:.1f} MB "
    with pytest.raises(ModelError, match=expected + r"\(a compressed archive bomb\): refused"):
        check_archive_sizes(tmp_path / "bomb.pth")


def test_weights_beside_as_many_other_entries_are_the_state_dict(tmp_path):
    weights = {"conv.weight": torch.ones(2, 1, 3, 3), "conv.bias": torch.zeros(2)}
    torch.save({**weights, "epoch": 12, "note": "fine-tuned"}, tmp_path / "m.pth")
    state = read_state_dict(tmp_path / "m.pth")
    assert sorted(state) == sorted(weights)
    for key, value in weights.items():
        torch.testing.assert_close(state[key], value)


def test_a_trainer_checkpoint_with_a_stray_top_level_tensor_gives_the_inner_weights(tmp_path):
    weights = {"module.body.0.weight": torch.full((4, 3, 3, 3), 0.5)}
    checkpoint = {"state_dict": weights, "epoch": 3, "optimizer": {"lr": 1e-4},
                  "ema_decay": torch.tensor(0.999)}  # fmt: skip
    torch.save(checkpoint, tmp_path / "trainer.ckpt")
    state = read_state_dict(tmp_path / "trainer.ckpt")
    assert list(state) == ["body.0.weight"]  # DataParallel's prefix stripped
    torch.testing.assert_close(state["body.0.weight"], weights["module.body.0.weight"])


@pytest.mark.parametrize(("name", "named"), [("model.onnx", ".onnx"), ("model", "(none)")])
def test_an_unsupported_model_file_names_its_type_and_the_known_ones(tmp_path, name, named):
    (tmp_path / name).write_bytes(b"\x08\x01")
    with pytest.raises(ModelError) as refused:
        read_state_dict(tmp_path / name)
    assert str(refused.value).startswith(f"Unsupported model file type {named}: use one of .")
    assert ".safetensors" in str(refused.value) and ".pth" in str(refused.value)
