"""What the CLI user meets with odd files: NaN pixels repaired and said, extreme shapes written."""

from __future__ import annotations

import logging
from pathlib import Path

import imagecodecs
import numpy as np
import pillow_heif
import pytest
import tifffile
from PIL import Image as PILImage

from studio.cli.main import main

JOBS = {
    "denoise": ["--engine", "gaussian", "--param", "radius=1.5"],
    "deblur": ["--engine", "wiener", "--param", "psf=gaussian", "--param", "noise=2"],
}
# Largest difference from the clean picture's result (values 0-2). Measured with the repair:
# denoise 0.011, deblur 0.055 (at the corner); with the bad samples set to 0 instead: 0.053, 0.80.
TOLERANCE = {"denoise": 0.03, "deblur": 0.1}


def _smooth_float_tiff(path: Path, bad: float | None = None) -> None:
    """A smooth float picture; with `bad`, three samples (a corner, a pair) replaced by it."""
    y, x = np.mgrid[0:24, 0:32].astype(np.float32)
    pixels = np.stack([x / 32, y / 24, (x + y) / 56 + 0.2], axis=-1) * 2.0  # HDR, above 1
    if bad is not None:
        pixels[0, 0, 1] = pixels[5, 7, 1] = pixels[5, 8, 1] = bad
    tifffile.imwrite(path, pixels, photometric="rgb")


@pytest.mark.parametrize("task", sorted(JOBS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_repaired_with_a_notice(tmp_path, caplog, task, bad):
    clean, broken = tmp_path / "clean.tif", tmp_path / "scan.tif"
    _smooth_float_tiff(clean)
    _smooth_float_tiff(broken, bad)
    with caplog.at_level(logging.WARNING):
        assert main(["run", task, str(broken), "-o", str(tmp_path / "a.tif"), *JOBS[task]]) == 0
    assert "scan.tif: 3 pixels with NaN or infinite values repaired from their neighbours" in (
        caplog.text
    )
    assert main(["run", task, str(clean), "-o", str(tmp_path / "b.tif"), *JOBS[task]]) == 0
    repaired, reference = tifffile.imread(tmp_path / "a.tif"), tifffile.imread(tmp_path / "b.tif")
    assert repaired.dtype == np.float32 and np.isfinite(repaired).all()
    assert np.abs(repaired - reference).max() < TOLERANCE[task]


def test_an_image_without_a_finite_pixel_is_refused_naming_it(tmp_path, capsys):
    source = tmp_path / "void.tif"
    tifffile.imwrite(source, np.full((8, 8), np.nan, np.float32))
    code = main(["run", "denoise", str(source), "-o", str(tmp_path / "o.tif"), *JOBS["denoise"]])
    assert code == 3
    assert f"Cannot read {source}: no pixel of the image is a finite number" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("shape", [(1200, 1), (1, 1200)])
def test_one_pixel_wide_result_is_written_as_png(tmp_path, shape):
    source, out = tmp_path / "line.png", tmp_path / "out.png"
    values = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    PILImage.fromarray(values).save(source)
    assert main(["run", "denoise", str(source), "-o", str(out), *JOBS["denoise"]]) == 0
    with PILImage.open(out) as written:
        assert written.size == (shape[1], shape[0])


def _phone_or_web_file(path: Path) -> None:
    """A small photo with EXIF, encoded by the format's own library."""
    y, x = np.mgrid[0:24, 0:32]
    pixels = np.stack([x * 8, y * 10, (x + y) * 4], axis=-1).astype(np.uint8)
    exif = PILImage.Exif()
    exif[0x010F] = "Phone"
    if path.suffix == ".heic":
        heif = pillow_heif.from_bytes(mode="RGB", size=(32, 24), data=pixels.tobytes())
        heif.save(str(path), quality=95, exif=exif.tobytes())
    elif path.suffix == ".avif":
        PILImage.fromarray(pixels).save(path, quality=95, exif=exif)
    else:
        path.write_bytes(imagecodecs.jpegxl_encode(pixels, lossless=True))


@pytest.mark.parametrize("suffix", [".heic", ".avif", ".jxl"])
def test_phone_and_web_formats_go_through_a_job_and_come_back(tmp_path, suffix):
    source, out = tmp_path / f"photo{suffix}", tmp_path / f"clean{suffix}"
    _phone_or_web_file(source)
    assert main(["run", "denoise", str(source), "-o", str(out), *JOBS["denoise"]]) == 0
    if suffix == ".jxl":
        assert imagecodecs.jpegxl_decode(out.read_bytes()).shape == (24, 32, 3)
        return
    opened = pillow_heif.open_heif(str(out)) if suffix == ".heic" else PILImage.open(out)
    assert opened.size == (32, 24)
    exif = PILImage.Exif()
    exif.load(opened.info["exif"])
    assert exif[0x010F] == "Phone"
