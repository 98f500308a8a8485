"""Published weights from ../shared/models through the studio's own path (skipped when absent).

Reference figures: ../shared/models/MANIFEST.md (measured by their publisher's method) and
the DnCNN paper (Zhang et al. 2017, Table 2, DnCNN-S at sigma 25).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage

from studio.core.image import Image
from studio.core.protocol import JobInputs, Progress, RunContext
from studio.engine import jobs
from studio.engine.neural.loader import load_model
from studio.engine.registry import build_registry
from tests.shared import shared_file

pytestmark = pytest.mark.realweights

# DnCNN-S, sigma 25, Set12 images 01-03 (Cameraman, House, Peppers): 30.18, 33.06, 30.87 dB.
DNCNN_PAPER_FIRST_THREE = (30.18 + 33.06 + 30.87) / 3


def drain(gen: Generator[Progress, None, Any]) -> Any:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def grey(path: Path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("L"), dtype=np.float32)[..., None] / 255.0


def rgb(path: Path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGB"), dtype=np.float32) / 255.0


def run(task: str, pixels: np.ndarray, model: Path, params: dict[str, Any] | None = None,
        tile: int | None = None, engine: str = "model", **inputs: Any) -> np.ndarray:  # fmt: skip
    request = jobs.JobRequest(
        task=task,
        inputs=JobInputs((Image(pixels.astype(np.float32)),), inputs),
        engine=engine,
        params=params or {},
    )
    ctx = RunContext(device="cpu", model_path=model, tile=tile)
    result: Image = drain(jobs.run_job(build_registry(), request, ctx))
    return result.pixels


def denoise_set12(model: Path, sigma: float, names: list[str]) -> tuple[float, float]:
    """Mean PSNR of noisy input and of the result over Set12 images, fixed noise seed."""
    rng = np.random.default_rng(0)
    noisy_psnr, out_psnr = [], []
    for name in names:
        clean = grey(shared_file("testdata", "denoising", "Set12", name))
        noisy = clean + rng.normal(0, sigma / 255, clean.shape).astype(np.float32)
        out = run("denoise", noisy, model, {"sigma": sigma})
        noisy_psnr.append(psnr(noisy, clean))
        out_psnr.append(psnr(out, clean))
    return float(np.mean(noisy_psnr)), float(np.mean(out_psnr))


SET12 = [f"{i:02d}.png" for i in range(1, 13)]


def test_every_shared_model_loads_as_described() -> None:
    folder = shared_file("models")
    expected = {
        "denoising/kair_dncnn_25.pth": ("DnCNN", "denoise"),
        "denoising/dncnn_color_blind.pth": ("DnCNN", "denoise"),
        "denoising/kair_ffdnet_color.pth": ("FFDNet", "denoise"),
        "denoising/ipol_ffdnet_net_gray.pth": ("FFDNet", "denoise"),
        "denoising/ipol_ffdnet_net_rgb.pth": ("FFDNet", "denoise"),
        "denoising/saoyan_DnCNN-B.pth": ("DnCNN", "denoise"),
        "style_transfer/tnet_nc8_udnie.model": ("TransformerNet", "style"),
        "style_transfer/tnet_nc16_mosaic.model": ("TransformerNet", "style"),
        "style_transfer/mobilenetv2_tnet_picasso.pth": ("TransformerMobileNet", "style"),
        "hdr/zero_dce_Epoch99.pth": ("Zero-DCE", "hdr"),
        "colorization/okidli1_cifar10_unet_colorizer.pth": ("UNetColorizer", "colorize"),
    }
    for name, (architecture, task) in expected.items():
        model = load_model(folder / name)
        assert (model.architecture, model.task) == (architecture, task), name


def test_dncnn_sigma25_on_set12_images() -> None:
    model = shared_file("models", "denoising", "kair_dncnn_25.pth")
    noisy, out = denoise_set12(model, 25, SET12[:3])
    assert noisy < 20.5
    assert out >= DNCNN_PAPER_FIRST_THREE - 0.15


@pytest.mark.slow
def test_dncnn_sigma25_on_full_set12() -> None:
    model = shared_file("models", "denoising", "kair_dncnn_25.pth")
    _, out = denoise_set12(model, 25, SET12)
    assert out >= 30.4


@pytest.mark.slow
@pytest.mark.parametrize(("sigma", "manifest"), [(15, 32.80), (50, 27.39)])
def test_ipol_ffdnet_gray_reaches_manifest(sigma: float, manifest: float) -> None:
    model = shared_file("models", "denoising", "ipol_ffdnet_net_gray.pth")
    _, out = denoise_set12(model, sigma, SET12)
    assert out >= manifest - 0.1


def test_ffdnet_strength_follows_sigma() -> None:
    """On a sigma-15 photo, asking for sigma 15 beats asking for 50 (which over-smooths)."""
    model = shared_file("models", "denoising", "ipol_ffdnet_net_gray.pth")
    clean = grey(shared_file("testdata", "denoising", "Set12", "05.png"))[64:192, 64:192]
    noisy = clean + np.random.default_rng(1).normal(0, 15 / 255, clean.shape).astype(np.float32)
    right = psnr(run("denoise", noisy, model, {"sigma": 15}), clean)
    wrong = psnr(run("denoise", noisy, model, {"sigma": 50}), clean)
    assert right > wrong + 1.0 and right > psnr(noisy, clean) + 5.0


def test_tiled_run_matches_untiled_within_002_db() -> None:
    model = shared_file("models", "denoising", "kair_dncnn_25.pth")
    clean = grey(shared_file("testdata", "denoising", "Set12", "08.png"))[128:384, 128:384]
    noisy = clean + np.random.default_rng(2).normal(0, 25 / 255, clean.shape).astype(np.float32)
    whole = psnr(run("denoise", noisy, model), clean)
    tiled = psnr(run("denoise", noisy, model, tile=96), clean)
    assert abs(whole - tiled) < 0.02


STYLE_REFERENCES = [
    ("tnet_nc8_candy.model", "amber.jpg", "amber-candy_nc8.jpg"),
    ("tnet_nc16_udnie.model", "amber.jpg", "amber-udnie_nc16.jpg"),
    ("mobilenetv2_tnet_mosaic.pth", "dancing.jpg", "dancing_mosaic_mobilenetv2.jpg"),
]
MORE_STYLE_REFERENCES = [
    *((f"tnet_nc{w}_{s}.model", "amber.jpg", f"amber-{s}_nc{w}.jpg")
      for w in (8, 16) for s in ("candy", "mosaic", "rain-princess", "udnie")),
    *((f"mobilenetv2_tnet_{s}.pth", "dancing.jpg", f"dancing_{s}_mobilenetv2.jpg")
      for s in ("candy", "mosaic", "picasso")),
]  # fmt: skip


def _style_psnr(model_name: str, content: str, reference: str) -> float:
    model = shared_file("models", "style_transfer", model_name)
    photo = rgb(shared_file("testdata", "style_transfer", "content", content))
    out = run("style", photo, model, {"max_size": 0})
    expected = rgb(shared_file("testdata", "style_transfer", "reference_outputs", reference))
    return psnr(np.round(out * 255) / 255, expected)


@pytest.mark.parametrize(("model_name", "content", "reference"), STYLE_REFERENCES)
def test_fast_style_agrees_with_authors_outputs(
    model_name: str, content: str, reference: str
) -> None:
    assert _style_psnr(model_name, content, reference) >= 25.0


@pytest.mark.slow
@pytest.mark.parametrize(("model_name", "content", "reference"), MORE_STYLE_REFERENCES)
def test_every_fast_style_model_agrees(model_name: str, content: str, reference: str) -> None:
    assert _style_psnr(model_name, content, reference) >= 25.0


def test_zero_dce_brightens_a_dark_photo() -> None:
    model = shared_file("models", "hdr", "zero_dce_Epoch99.pth")
    photo = rgb(shared_file("testdata", "hdr", "lowlight", "LIME_3.bmp"))[::4, ::4]
    out = run("hdr", photo, model)
    assert out.mean() > photo.mean() + 0.1
    assert np.corrcoef(out.mean(2).ravel(), photo.mean(2).ravel())[0, 1] > 0.8


def _kernels() -> list[np.ndarray]:
    from scipy.io import loadmat

    mat = loadmat(shared_file("testdata", "deblurring", "kernels", "kernels_12.mat"))
    return [np.asarray(k / k.sum(), np.float32) for k in mat["kernels"][0]]


def test_pnp_deblur_gains_4db_on_real_kernels(tmp_path: Path) -> None:
    """Blur with real camera-shake kernels (symmetric boundary) plus 1 % noise."""
    pytest.importorskip("studio.engine.psf")
    model = shared_file("models", "denoising", "ipol_ffdnet_net_gray.pth")
    rng = np.random.default_rng(3)
    gains = []
    for name, (y, x) in (("02.png", (64, 64)), ("05.png", (40, 80))):
        clean = grey(shared_file("testdata", "denoising", "Set12", name))[y : y + 128, x : x + 128]
        for index in (0, 5):
            kernel = _kernels()[index]
            blurred = ndimage.convolve(clean[..., 0], kernel, mode="reflect")[..., None]
            blurred = blurred + rng.normal(0, 0.01, blurred.shape).astype(np.float32)
            kernel_path = tmp_path / f"k{index}.npy"
            np.save(kernel_path, kernel)
            params = {"kernel": str(kernel_path), "noise": 2.55}
            out = run("deblur", blurred, model, params, engine="pnp")
            gains.append(psnr(out, clean) - psnr(np.clip(blurred, 0, 1), clean))
    assert float(np.mean(gains)) >= 4.0


def test_pnp_inpaint_fills_missing_pixels() -> None:
    model = shared_file("models", "denoising", "ipol_ffdnet_net_rgb.pth")
    clean = rgb(shared_file("testdata", "denoising", "CBSD68", "101085.png"))[:128, :128]
    missing = (np.random.default_rng(4).random(clean.shape[:2]) < 0.8).astype(np.float32)
    damaged = clean * (1 - missing[..., None])
    out = run("inpaint", damaged, model, {"iterations": 12}, engine="pnp", mask=missing)
    assert psnr(out, clean) > psnr(damaged, clean) + 12.0
    np.testing.assert_allclose(out[missing == 0], clean[missing == 0], atol=1e-5)
