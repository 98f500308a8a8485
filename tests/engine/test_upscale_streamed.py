"""Enlargements are assembled a band of rows at a time into 16-bit samples (float32 for float
photos) and written without a full-size float32 result: the same pixels as the in-memory
path, nothing left behind on failure or cancel, memory well under a float32 result."""

from __future__ import annotations

import signal
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from skimage import data as skdata

from studio.core.image import Image, ImageMeta
from studio.core.imageio import png_bands, read_image, write_image
from studio.core.protocol import JobInputs, RunContext
from studio.core.stored import StoredImage, as_float, quantise
from studio.engine.jobs import JobRequest, run_job
from studio.engine.neural.executor import get_model, run_model
from studio.engine.ops._upscale_detail import upscale_step
from studio.engine.registry import build_registry
from studio.engine.tiling import run_tiled
from tests.cli.test_interrupt import studio, wait_for
from tests.helpers import finish, psnr


def _photo(height: int = 96, width: int = 128) -> np.ndarray:
    return skdata.astronaut()[100 : 100 + height, 180 : 180 + width].astype(np.float32) / 255


def _upscale(image: Image, engine: str, ctx: RunContext, **params: object) -> StoredImage:
    request = JobRequest("upscale", JobInputs((image,)), engine=engine, params=params)
    result = finish(run_job(build_registry(), request, ctx))
    assert isinstance(result, StoredImage)
    return result


@pytest.mark.parametrize("scale", [2, 4])
def test_detail_stored_rows_equal_the_in_memory_result_quantised(scale: int) -> None:
    pixels = _photo()
    result = _upscale(Image(pixels), "detail", RunContext(device="cpu", tile=64), scale=scale)
    in_memory = pixels
    for _ in range(scale // 2):  # the whole result of each 2x step held in float32
        step = partial(upscale_step, factor=2)
        in_memory = finish(run_tiled(in_memory, step, tile=128, overlap=32, scale=2))
    assert result.samples.dtype == np.uint16
    np.testing.assert_array_equal(result.samples, quantise(in_memory, 16))


def test_lanczos_in_16_bits_agrees_with_float_resizing() -> None:
    """Resizing the 16-bit samples (no float32 result) against resizing float32 and quantising:
    OpenCV rounds the same way but for float ties."""
    pixels = _photo()
    result = _upscale(Image(pixels), "lanczos", RunContext(), scale=3)
    in_memory = cv2.resize(pixels, (384, 288), interpolation=cv2.INTER_LANCZOS4)
    reference = quantise(in_memory, 16)
    assert result.samples.dtype == np.uint16
    assert np.abs(result.samples.astype(np.int32) - reference).max() <= 1
    assert psnr(as_float(result.samples), as_float(reference)) >= 90.0


def test_a_float_photo_stays_float_and_unclipped() -> None:
    radiance = _photo() * 6.0 - 0.5
    image = Image(radiance, ImageMeta(bit_depth=32))
    result = _upscale(image, "lanczos", RunContext(), scale=2)
    in_memory = cv2.resize(radiance, (256, 192), interpolation=cv2.INTER_LANCZOS4)
    assert result.samples.dtype == np.float32
    np.testing.assert_array_equal(result.samples, in_memory)
    assert result.samples.max() > 5.0 and result.samples.min() < 0.0


def _compact_checkpoint(folder: Path, scale: int = 2) -> Path:
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(3)
    path = folder / f"compact_x{scale}.pth"
    torch.save(Compact(num_feat=8, num_conv=2, upscale=scale).state_dict(), path)
    return path


def test_model_stored_rows_equal_the_in_memory_result_quantised(tmp_path: Path) -> None:
    pixels = _photo()
    ctx = RunContext(device="cpu", tile=64, model_path=_compact_checkpoint(tmp_path))
    result = _upscale(Image(pixels), "model", ctx)
    in_memory = finish(run_model(get_model(ctx.model_path, ctx), pixels, ctx, output_bits=8))
    np.testing.assert_array_equal(result.samples, quantise(in_memory, 16))


def test_a_4x_model_asked_for_2x_is_reduced_on_the_way_like_an_area_resize(
    tmp_path: Path,
) -> None:
    pixels = _photo()
    ctx = RunContext(device="cpu", tile=64, model_path=_compact_checkpoint(tmp_path, 4))
    result = _upscale(Image(pixels), "model", ctx, scale=2)
    model_result = finish(run_model(get_model(ctx.model_path, ctx), pixels, ctx, output_bits=8))
    in_memory = cv2.resize(model_result, (256, 192), interpolation=cv2.INTER_AREA)
    assert result.samples.shape == (192, 256, 3)
    difference = result.samples.astype(np.int32) - quantise(in_memory, 16)
    assert np.abs(difference).max() <= 1


@pytest.mark.parametrize(
    ("shape", "scale"), [((40, 16), 3), ((16, 40), 3), ((1, 40), 2.2), ((40, 1), 2.2)]
)
def test_a_2x_model_asked_for_more_is_enlarged_further_by_lanczos(
    tmp_path: Path, shape: tuple[int, int], scale: float
) -> None:
    """Past the model's own scale the enlargement goes on with Lanczos (sharp, like the
    Lanczos engine), tall or wide, not with area averaging (which only reduces well); a
    1-px strip at 2.2x, wide or tall, keeps the model's 2 px across and is lengthened the same
    way."""
    pixels = _photo(*shape)
    ctx = RunContext(device="cpu", tile=64, model_path=_compact_checkpoint(tmp_path, 2))
    result = _upscale(Image(pixels), "model", ctx, scale=scale)
    model_result = finish(run_model(get_model(ctx.model_path, ctx), pixels, ctx, output_bits=8))
    size = (round(shape[1] * scale), max(round(shape[0] * scale), shape[0] + 1))
    assert result.samples.shape[1::-1] == size
    further = cv2.resize(model_result, size, interpolation=cv2.INTER_LANCZOS4)
    further = further.reshape(*size[::-1], -1)
    difference = result.samples.astype(np.int32) - quantise(np.clip(further, 0, 1), 16)
    assert np.abs(difference).max() <= 2


def _stored(channels: int, alpha: bool) -> StoredImage:
    rng = np.random.default_rng(channels)
    smooth = cv2.GaussianBlur(rng.random((150, 170, channels), dtype=np.float32), (0, 0), 3)
    samples = quantise(smooth.reshape(150, 170, channels), 16)
    mask = quantise(rng.random((150, 170), dtype=np.float32), 16) if alpha else None
    return StoredImage(samples, ImageMeta(bit_depth=16), mask)


def _with_alpha(image: StoredImage) -> np.ndarray:
    if image.alpha is None:
        return image.samples
    return np.concatenate([image.samples, image.alpha[..., None]], axis=2)


@pytest.mark.parametrize(("channels", "alpha"), [(3, False), (1, False), (3, True), (1, True)])
def test_png_in_bands_holds_exactly_the_stored_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int, alpha: bool
) -> None:
    image = _stored(channels, alpha)
    whole = write_image(image, tmp_path / "whole.png")
    monkeypatch.setattr(png_bands, "PNG_BANDS_ABOVE", 0)
    monkeypatch.setattr(png_bands, "_BAND_BYTES", 4096)  # many bands
    banded = write_image(image, tmp_path / "banded.png")
    expected = _with_alpha(image).reshape(150, 170, -1)
    for path in (whole, banded):
        decoded = imagecodecs.png_decode(path.read_bytes())
        assert decoded.dtype == np.uint16
        np.testing.assert_array_equal(decoded.reshape(expected.shape), expected)


def test_tiff_and_8_bit_png_of_a_stored_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _stored(3, False)
    tiff = write_image(image, tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tiff), image.samples)
    monkeypatch.setattr(png_bands, "PNG_BANDS_ABOVE", 0)
    eight = imagecodecs.png_decode(
        write_image(image, tmp_path / "out.png", bit_depth=8).read_bytes()
    )
    assert eight.dtype == np.uint8
    assert psnr(eight / 255.0, as_float(image.samples)) >= 50.0


def test_a_write_failing_midway_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bands = 0

    def disk_full_at_the_third_band(*args: object) -> bytes:
        nonlocal bands
        bands += 1
        if bands == 3:
            raise OSError(28, "No space left on device")
        return filtered(*args)

    filtered = png_bands._paeth_filtered
    monkeypatch.setattr(png_bands, "PNG_BANDS_ABOVE", 0)
    monkeypatch.setattr(png_bands, "_BAND_BYTES", 4096)
    monkeypatch.setattr(png_bands, "_paeth_filtered", disk_full_at_the_third_band)
    with pytest.raises(Exception, match="No space left"):
        write_image(_stored(3, False), tmp_path / "big.png")
    assert bands == 3
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_an_upscale_writes_nothing(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    PILImage.fromarray(skdata.astronaut()[:192, :256]).save(photo)
    out = tmp_path / "out" / "big.tif"
    proc = studio(
        "run", "upscale", str(photo), "-o", str(out), "--engine", "detail", "--tile", "64",
        "--param", "scale=4",
    )  # fmt: skip
    wait_for(proc, "progress", 3)  # tiles are being enlarged
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert [p.name for p in tmp_path.rglob("*")] == ["photo.png"]


def _traced_peak(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _growth(peak_of: Callable[[int], tuple[int, int]], sizes: tuple[int, int]) -> float:
    """How much the peak grows per byte of output between two sizes: (peak, output bytes) of
    each. What does not grow with the picture (a band of rows, a row of tiles, a model) cancels
    out."""
    (small_peak, small), (big_peak, big) = peak_of(sizes[0]), peak_of(sizes[1])
    return (big_peak - small_peak) / (big - small)


@pytest.mark.parametrize(("engine", "model_scale"), [("lanczos", 2), ("detail", 2),
                                                     ("model", 2), ("model", 4)])  # fmt: skip
def test_memory_grows_by_the_16_bit_output_not_a_float32_result(
    engine: str, model_scale: int, tmp_path: Path
) -> None:
    """The job's peak memory (tracemalloc; the photo made beforehand) grows by about one byte
    per byte of 16-bit output (the stored result), where a float32 result alone would add two
    (and a 4x model's whole result, reduced to 2x afterwards, four)."""
    model = _compact_checkpoint(tmp_path, model_scale)
    ctx = RunContext(device="cpu", tile=64, model_path=model)
    if engine == "model":
        get_model(ctx.model_path, ctx)
    tiled = np.tile(skdata.astronaut().astype(np.float32) / 255, (2, 1, 1))

    def peak_of(height: int) -> tuple[int, int]:
        image = Image(np.ascontiguousarray(tiled[:height, :256]))
        results: list[StoredImage] = []
        peak = _traced_peak(lambda: results.append(_upscale(image, engine, ctx, scale=2)))
        return peak, results[0].samples.nbytes

    assert 0.9 < _growth(peak_of, (256, 640)) < 1.5


@pytest.mark.parametrize(("name", "depth", "bound"), [("tif", 16, 0.1), ("png", 16, 0.1),
                                                      ("png", 8, 0.6)])  # fmt: skip
def test_writing_a_stored_image_makes_no_full_size_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, depth: int, bound: float
) -> None:
    """16-bit samples are encoded as they are; an 8-bit file needs its own 8-bit samples (half
    the 16-bit ones), converted a band at a time."""
    monkeypatch.setattr(png_bands, "PNG_BANDS_ABOVE", 0)
    rng = np.random.default_rng(0)

    def peak_of(height: int) -> tuple[int, int]:
        samples = rng.integers(0, 65536, (height, 1024, 3), dtype=np.uint16)
        image = StoredImage(samples, ImageMeta(bit_depth=16))
        out = tmp_path / f"{height}.{name}"
        return _traced_peak(lambda: write_image(image, out, bit_depth=depth)), samples.nbytes

    assert _growth(peak_of, (256, 1024)) < bound


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".png", ".tif", ".exr", ".hdr", ".avif",
                                    ".jxl", ".heic"])  # fmt: skip
def test_every_format_writes_a_stored_image(tmp_path: Path, suffix: str) -> None:
    image = _stored(3, False)
    written = read_image(write_image(image, tmp_path / f"out{suffix}", quality=95))
    assert written.pixels.shape == image.samples.shape
    assert psnr(written.pixels, as_float(image.samples)) >= 35.0
