"""Torch engines on a device: tiles from free memory, halving on out-of-memory, CPU fallback."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest
import torch

from studio.core.errors import OutOfMemoryError
from studio.core.image import Image
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine import tiling
from studio.engine.jobs import JobRequest, run_job
from studio.engine.ops import _denoise_bm3d as bm3d
from studio.engine.registry import build_registry
from tests.helpers import finish

OOM = "CUDA out of memory. Tried to allocate 1.50 GiB"


def _noisy(side: int = 200) -> np.ndarray:
    rng = np.random.default_rng(2)
    clean = np.linspace(0.2, 0.8, side, dtype=np.float32)[None, :, None].repeat(side, 0)
    return np.clip(clean.repeat(3, 2) + rng.normal(0, 0.05, (side, side, 3)), 0, 1).astype(
        np.float32
    )


def _cbm3d(pixels: np.ndarray, tile: int) -> tuple[np.ndarray, list[str]]:
    logs: list[str] = []
    request = JobRequest("denoise", JobInputs((Image(pixels),)), "cbm3d", {"sigma": 12})
    ctx = RunContext(device="cpu", tile=tile, log=logs.append)
    return finish(run_job(build_registry(), request, ctx)).pixels, logs


def test_cbm3d_halves_its_tile_on_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = _noisy()
    reference, _ = _cbm3d(pixels, 96)
    real = bm3d.cbm3d
    sides: list[int] = []

    def short_of_memory(tile: np.ndarray, sigma: float, device: torch.device) -> np.ndarray:
        sides.append(max(tile.shape[:2]))
        if max(tile.shape[:2]) > 100:
            raise RuntimeError(OOM)
        return real(tile, sigma, device)

    monkeypatch.setattr(bm3d, "cbm3d", short_of_memory)
    out, logs = _cbm3d(pixels, 192)
    assert sides[0] > 100 and max(sides[-4:]) <= 96
    assert any("retrying with 96px tiles" in line for line in logs)
    np.testing.assert_allclose(out, reference, atol=1e-5)


def test_a_gpu_short_of_memory_at_the_smallest_tile_moves_to_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pixels = np.random.default_rng(3).random((300, 280, 3), dtype=np.float32)
    used: list[str] = []
    released: list[int] = []
    monkeypatch.setattr(tiling, "release_memory", lambda: released.append(len(used)))

    def doubled(tile: np.ndarray, device: torch.device) -> np.ndarray:
        used.append(device.type)
        if device.type != "cpu":
            raise RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")
        return tile * 2

    logs: list[str] = []
    ctx = RunContext(tile=256, log=logs.append)
    run = tiling.run_tiled_on_device(
        pixels, doubled, torch.device("cuda"), ctx, bytes_per_pixel=1000, cpu_tile=128, overlap=8
    )
    out = finish(run)
    np.testing.assert_allclose(out, pixels * 2, atol=1e-6)
    assert used[:3] == ["cuda", "cuda", "cuda"] and used[-1] == "cpu"
    assert any("on the CPU instead" in line for line in logs)
    assert released == [1, 2, 3]  # the GPU's cache handed back after each failed try


def test_out_of_memory_on_the_cpu_at_the_smallest_tile_is_reported() -> None:
    def failing(tile: np.ndarray, device: torch.device) -> np.ndarray:
        raise RuntimeError(OOM)

    run = tiling.run_tiled_on_device(
        np.zeros((200, 200, 1), np.float32), failing, torch.device("cpu"), RunContext(),
        bytes_per_pixel=1000, cpu_tile=128, overlap=8,
    )  # fmt: skip
    with pytest.raises(OutOfMemoryError):
        finish(run)


def test_halving_stops_at_the_smallest_tile_with_room_beyond_its_overlaps() -> None:
    """With a 40-px overlap the smallest tile is 2 x 40 + 32 = 112 px: 300 px halves to 150
    once, and 75 px is not tried."""

    def failing(tile: np.ndarray, device: torch.device) -> np.ndarray:
        raise RuntimeError(OOM)

    logs: list[str] = []
    run = tiling.run_tiled_on_device(
        np.zeros((400, 400, 1), np.float32), failing, torch.device("cpu"),
        RunContext(tile=300, log=logs.append), bytes_per_pixel=1000, cpu_tile=128, overlap=40,
    )  # fmt: skip
    with pytest.raises(OutOfMemoryError, match="even with 150px tiles"):
        finish(run)
    assert logs == ["Out of memory with 300px tiles: retrying with 150px tiles"]


def test_gpu_tiles_follow_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(tiling, "free_bytes", lambda device: 2**30)
    large = tiling.tile_for_memory(cuda, bm3d.BYTES_PER_PIXEL, cpu_tile=384)
    monkeypatch.setattr(tiling, "free_bytes", lambda device: 2**26)
    small = tiling.tile_for_memory(cuda, bm3d.BYTES_PER_PIXEL, cpu_tile=384)
    assert large * large * bm3d.BYTES_PER_PIXEL <= 2**30 < 4 * large * large * bm3d.BYTES_PER_PIXEL
    assert 64 <= small < large
    assert tiling.tile_for_memory(torch.device("cpu"), bm3d.BYTES_PER_PIXEL, cpu_tile=384) == 384


def test_whole_image_engine_moves_to_the_cpu_when_the_gpu_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    devices: list[str] = []
    released: list[int] = []
    monkeypatch.setattr(tiling, "release_memory", lambda: released.append(len(devices)))

    def painting(device: torch.device) -> Generator[Progress, None, np.ndarray]:
        devices.append(device.type)
        yield Progress(0, 1, "Painting")
        if device.type != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return np.ones((4, 4, 3), np.float32)

    logs: list[str] = []
    out = finish(
        tiling.on_device_or_cpu(painting, torch.device("cuda"), RunContext(log=logs.append))
    )
    assert devices == ["cuda", "cpu"] and out.shape == (4, 4, 3)
    assert any("on the CPU instead" in line for line in logs)
    assert released == [1]  # the GPU's cache handed back after its try, before the CPU's


@pytest.mark.parametrize(
    ("device", "error"),
    [("cuda", ValueError("a bug, not memory")), ("cpu", torch.OutOfMemoryError("CPU out"))],
)
def test_only_a_gpu_short_of_memory_is_run_again_on_the_cpu(device: str, error: Exception) -> None:
    """Any other failure is the job's failure, raised at once: a GPU's real error is not
    hidden by a silent second run on the CPU, and the CPU does not retry itself."""
    devices: list[str] = []

    def painting(on: torch.device) -> Generator[Progress, None, np.ndarray]:
        devices.append(on.type)
        yield Progress(0, 1, "Painting")
        raise error

    with pytest.raises(type(error)):
        finish(tiling.on_device_or_cpu(painting, torch.device(device), RunContext()))
    assert devices == [device]
