"""Sample pictures made by Studio itself (procedural, no third-party photos), one per job.

`ensure_samples(folder)` renders a small lakeside landscape at dusk and derives from it a noisy
copy (denoise), a shaken copy (deblur), a scratched copy with its mask (inpaint), three exposure
brackets with their times in EXIF (HDR), a black-and-white copy (colorize), and a few
paintings to borrow a style from (style). Files are written once and reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import TiffImagePlugin

from studio.core.image import FloatArray, Image, ImageMeta
from studio.core.imageio import write_image

WIDTH, HEIGHT = 960, 640
BRACKET_TIMES = (Fraction(1, 250), Fraction(1, 60), Fraction(1, 15))
_VERSION = "1"


@dataclass(frozen=True)
class Sample:
    """One ready-to-try job: the task, a title, and the files it opens."""

    task: str
    title: str
    description: str
    images: tuple[Path, ...]
    mask: Path | None = None
    style: Path | None = None


def _fbm(rng: np.random.Generator, height: int, width: int, octaves: int = 5) -> FloatArray:
    """Smooth fractal noise in about [0, 1], cubic-upsampled random grids summed by octave."""
    total = np.zeros((height, width), np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        cells = 3 * 2**octave
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= 0.5
    return np.asarray(np.clip(total / norm, 0.0, 1.0), dtype=np.float32)


def _ridge(rng: np.random.Generator, width: int, base: float, height: float) -> FloatArray:
    line = _fbm(rng, 1, width, octaves=6)[0]
    return np.asarray(base - height * (line - 0.5) * 2, dtype=np.float32)


def landscape(seed: int = 7, width: int = WIDTH, height: int = HEIGHT) -> FloatArray:
    """A lakeside at dusk in display-referred RGB (H, W, 3) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    v, u = y / height, x / width
    horizon = 0.6
    t = np.clip(v / horizon, 0, 1)[..., None]
    sky = (1 - t) * np.array([0.16, 0.27, 0.55]) + t * np.array([0.98, 0.66, 0.42])
    sun_d = np.hypot((u - 0.7) * width / height, v - 0.42)
    sky += np.exp(-((sun_d / 0.12) ** 2))[..., None] * np.array([0.5, 0.3, 0.1])
    sky = np.where((sun_d < 0.035)[..., None], np.array([1.0, 0.96, 0.85]), sky)
    clouds = np.clip((_fbm(rng, height, width) - 0.52) * 4, 0, 1)[..., None] * (v < 0.45)[..., None]
    sky = sky * (1 - 0.55 * clouds) + clouds * 0.55 * np.array([0.98, 0.8, 0.75])
    picture = sky
    far = _ridge(rng, width, 0.5, 0.08)[None, :] * height
    near = _ridge(rng, width, 0.58, 0.06)[None, :] * height
    haze = _fbm(rng, height, width, 4)[..., None] * 0.06
    picture = np.where((y > far)[..., None], np.array([0.38, 0.36, 0.52]) + haze, picture)
    picture = np.where((y > near)[..., None], np.array([0.17, 0.22, 0.22]) + haze, picture)
    water_top = int(horizon * height)
    mirror = picture[water_top - 1 :: -1][: height - water_top]
    ripple = 3 * np.sin(np.arange(height - water_top) * 0.9)[:, None] * np.ones((1, width))
    shift = np.clip(np.arange(width)[None, :] + ripple, 0, width - 1).astype(int)
    rows = np.arange(height - water_top)[:, None]
    water = mirror[rows, shift] * np.array([0.62, 0.7, 0.78])
    picture = picture.copy()
    picture[water_top:] = water
    shore = v > 0.86 + 0.02 * np.sin(u * 9)
    grass = np.array([0.18, 0.3, 0.12]) + (_fbm(rng, height, width, 6)[..., None] - 0.5) * 0.25
    picture = np.where(shore[..., None], grass, picture)
    _cabin(picture, width, height)
    for tree_u in (0.05, 0.09, 0.36, 0.42, 0.88, 0.93):
        _tree(picture, tree_u, width, height, rng)
    return np.asarray(np.clip(picture, 0, 1), dtype=np.float32)


def _cabin(picture: np.ndarray, width: int, height: int) -> None:
    x0, x1 = int(0.16 * width), int(0.29 * width)
    y0, y1 = int(0.76 * height), int(0.88 * height)
    picture[y0:y1, x0:x1] = (0.35, 0.2, 0.13)
    picture[y0:y1:6, x0:x1] *= 0.8
    for row in range(int(0.68 * height), y0):
        half = (row - int(0.68 * height)) / (y0 - int(0.68 * height)) * (x1 - x0) * 0.6
        centre = (x0 + x1) / 2
        picture[row, int(centre - half) : int(centre + half)] = (0.5, 0.12, 0.1)
    for wx in (0.19, 0.245):
        picture[
            int(0.79 * height) : int(0.84 * height), int(wx * width) : int((wx + 0.03) * width)
        ] = (
            1.0,
            0.82,
            0.4,
        )


def _tree(picture: np.ndarray, u: float, width: int, height: int, rng: np.random.Generator) -> None:
    base = int((0.88 + 0.02 * rng.random()) * height)
    top = base - int((0.16 + 0.08 * rng.random()) * height)
    centre = int(u * width)
    for row in range(top, base):
        half = int((row - top) / (base - top) * 0.035 * width) + 1
        shade = 0.08 + 0.05 * ((row // 4) % 2)
        picture[row, max(centre - half, 0) : centre + half] = (
            shade * 0.6,
            shade + 0.08,
            shade * 0.7,
        )


def radiance(display: FloatArray) -> FloatArray:
    """A linear radiance map for the scene: the sky and the sun far brighter than the shore."""
    linear = np.power(display, 2.2)
    lum = linear.mean(axis=2, keepdims=True)
    boost = 1.0 + 40.0 * np.clip(lum - 0.6, 0, None) ** 2 * 10
    return np.asarray(linear * boost * 2.0, dtype=np.float32)


def bracket(scene_radiance: FloatArray, seconds: Fraction) -> FloatArray:
    """What a camera with a 2.2 gamma records in `seconds` (relative to 1/60 s)."""
    exposed = scene_radiance * float(seconds * 60) * 0.5
    return np.asarray(np.power(np.clip(exposed, 0, 1), 1 / 2.2), dtype=np.float32)


def _exif_with_exposure(seconds: Fraction) -> bytes:
    exif = PILImage.Exif()
    exif[0x0110] = "Studio sample camera"
    exposure = TiffImagePlugin.IFDRational(seconds.numerator, seconds.denominator)
    exif.get_ifd(0x8769)[0x829A] = exposure  # ExposureTime
    exif.get_ifd(0x8769)[0x8827] = 100  # ISO
    return exif.tobytes()


def motion_blur(pixels: FloatArray, length: int = 15, angle: float = 30.0) -> FloatArray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rotation, (length, length)), dtype=np.float32)
    kernel /= kernel.sum()
    return np.asarray(cv2.filter2D(pixels, -1, kernel, borderType=cv2.BORDER_REFLECT), np.float32)


def scratches(height: int, width: int, seed: int = 3) -> FloatArray:
    """A mask (H, W) of a few thick scratches and a blot, as on a damaged print."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(4):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height // 2)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(height // 2, height)))
        cv2.line(mask, p0, p1, 255, int(rng.integers(4, 9)), lineType=cv2.LINE_AA)
    cv2.circle(mask, (int(width * 0.55), int(height * 0.3)), 26, 255, -1, lineType=cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def painting(kind: str, size: int = 512, seed: int = 11) -> FloatArray:
    """A bold 'painting' to borrow a style from: swirls, mosaic or waves."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "swirls":
        angle = np.arctan2(y - 0.5, x - 0.5) + 8 * np.hypot(x - 0.5, y - 0.5)
        bands = 0.5 + 0.5 * np.sin(angle * 6)
        colours = np.stack([bands, 0.4 + 0.5 * (1 - bands) * y, 0.9 - 0.6 * bands * x], axis=2)
    elif kind == "mosaic":
        seeds = rng.random((60, 2)).astype(np.float32)
        palette = rng.random((60, 3)).astype(np.float32) * 0.8 + 0.2
        distance = (x[..., None] - seeds[:, 0]) ** 2 + (y[..., None] - seeds[:, 1]) ** 2
        order = np.sort(distance, axis=2)
        cells = np.argmin(distance, axis=2)
        edge = (np.sqrt(order[..., 1]) - np.sqrt(order[..., 0])) < 0.006
        colours = np.where(edge[..., None], 0.05, palette[cells])
    else:
        waves = np.sin(12 * x + 4 * np.sin(9 * y)) * 0.5 + 0.5
        colours = np.stack([0.1 + 0.2 * waves, 0.3 + 0.5 * waves, 0.55 + 0.4 * waves], axis=2)
    grain = (_fbm(rng, size, size, 6)[..., None] - 0.5) * 0.15
    return np.asarray(np.clip(colours + grain, 0, 1), dtype=np.float32)


STYLE_KINDS = ("swirls", "mosaic", "waves")


def _write(pixels: FloatArray, path: Path, exif: bytes | None = None) -> Path:
    meta = ImageMeta(bit_depth=8, source_format="png", exif=exif)
    return write_image(Image(np.ascontiguousarray(pixels, dtype=np.float32), meta), path)


def bundled_styles(folder: Path) -> list[Path]:
    """The procedural style paintings, written to `folder` on first use."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in STYLE_KINDS:
        path = folder / f"style-{kind}.png"
        if not path.is_file():
            _write(painting(kind), path)
        paths.append(path)
    return paths


def ensure_samples(folder: Path) -> list[Sample]:
    """Write the sample files into `folder` (once) and describe them.

    The style paintings go into `folder/styles` (where the style well looks).
    """
    folder = folder / f"v{_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    scene: FloatArray | None = None

    def scene_pixels() -> FloatArray:
        nonlocal scene
        if scene is None:
            scene = landscape()
        return scene

    def need(name: str) -> Path | None:
        path = folder / name
        return None if path.is_file() else path

    if path := need("lakeside.png"):
        _write(scene_pixels(), path)
    if path := need("noisy-dusk.png"):
        noisy = scene_pixels() + rng.normal(0, 0.08, scene_pixels().shape).astype(np.float32)
        _write(np.clip(noisy, 0, 1), path)
    if path := need("shaken-lakeside.png"):
        _write(motion_blur(scene_pixels()), path)
    mask = scratches(HEIGHT, WIDTH)
    if path := need("scratched-print.png"):
        _write(np.where(mask[..., None] > 0.5, 0.97, scene_pixels()), path)
    if path := need("scratched-print-mask.png"):
        _write(mask[..., None], path)
    brackets = []
    for seconds in BRACKET_TIMES:
        name = f"bracket-1-{seconds.denominator}s.jpg"
        if path := need(name):
            exposed = bracket(radiance(scene_pixels()), seconds)
            meta = ImageMeta(bit_depth=8, source_format="jpeg", exif=_exif_with_exposure(seconds))
            write_image(Image(exposed, meta), path, quality=92)
        brackets.append(folder / name)
    if path := need("old-photo-bw.png"):
        grey = scene_pixels() @ np.array([0.299, 0.587, 0.114], np.float32)
        _write(grey[..., None], path)
    if path := need("small-lakeside.png"):
        small = cv2.resize(scene_pixels(), (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
        _write(np.asarray(small, np.float32), path)
    styles = bundled_styles(folder.parent / "styles")
    return [
        Sample(
            "denoise", "Noisy dusk", "High-ISO grain over a lakeside", (folder / "noisy-dusk.png",)
        ),
        Sample(
            "deblur",
            "Shaken shot",
            "Camera shake along a 30° line",
            (folder / "shaken-lakeside.png",),
        ),
        Sample(
            "inpaint",
            "Scratched print",
            "Scratches and a blot, with their mask",
            (folder / "scratched-print.png",),
            mask=folder / "scratched-print-mask.png",
        ),
        Sample("hdr", "Sunset brackets", "Three exposures, 1/250 to 1/15 s", tuple(brackets)),
        Sample(
            "colorize",
            "Old photograph",
            "Black and white, ready for colour",
            (folder / "old-photo-bw.png",),
        ),
        Sample(
            "style",
            "Painted lakeside",
            "Borrow the style of a swirl painting",
            (folder / "lakeside.png",),
            style=styles[0],
        ),
        Sample(
            "upscale",
            "Small print",
            "A half-size lakeside to enlarge",
            (folder / "small-lakeside.png",),
        ),
    ]
