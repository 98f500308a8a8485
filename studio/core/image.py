"""The in-memory image: float32 pixels plus everything needed to write it back faithfully."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ImageMeta:
    """What a file carried besides pixels, and what writing needs to reproduce it.

    `bit_depth` is the source's sample depth: 8 or 16 for integer formats (pixels scaled to
    [0, 1]), 32 for floating-point formats (pixels unscaled, e.g. linear radiance).
    `linear` marks integer-range pixels that hold linear light (a camera RAW developed without
    a tone curve) instead of sRGB-encoded values; see `is_linear_photo`.
    """

    bit_depth: int = 8
    source_format: str = ""
    source_path: Path | None = None
    exif: bytes | None = None
    icc_profile: bytes | None = None
    xmp: bytes | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    iso: float | None = None
    history: tuple[str, ...] = ()
    linear: bool = False

    @property
    def is_float(self) -> bool:
        return self.bit_depth == 32

    @property
    def is_linear_photo(self) -> bool:
        """Pixels in [0, 1] of linear light that must be sRGB-encoded to be shown, filtered by
        engines made for ordinary photos, or written to an 8- or 16-bit file (a developed
        camera RAW). Float images are radiance maps, never this."""
        return self.linear and not self.is_float

    def with_step(self, step: str) -> ImageMeta:
        """Return a copy that records one more applied operation."""
        return dataclasses.replace(self, history=(*self.history, step))


@dataclass(frozen=True)
class Image:
    """An image as Studio works on it.

    `pixels` is float32 of shape (H, W, C) with C = 1 (grey) or 3 (RGB). Integer sources are
    scaled to [0, 1]; float sources keep their values. `alpha` (H, W) in [0, 1] rides along
    untouched by operations.
    """

    pixels: FloatArray
    meta: ImageMeta = field(default_factory=ImageMeta)
    alpha: FloatArray | None = None

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 3):
            raise ValueError(f"pixels must be (H, W, 1|3), got {self.pixels.shape}")
        if self.pixels.dtype != np.float32:
            raise ValueError(f"pixels must be float32, got {self.pixels.dtype}")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    def with_pixels(self, pixels: FloatArray, step: str | None = None) -> Image:
        """Same metadata and alpha, new pixels (of the same height and width)."""
        meta = self.meta.with_step(step) if step else self.meta
        return Image(np.ascontiguousarray(pixels, dtype=np.float32), meta, self.alpha)


def as_rgb(pixels: FloatArray) -> FloatArray:
    """Expand grey (H, W, 1) to (H, W, 3); RGB passes through."""
    return pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, axis=2)


def luminance(pixels: FloatArray) -> FloatArray:
    """Rec. 709 luma of (H, W, C) pixels, shape (H, W)."""
    if pixels.shape[2] == 1:
        return pixels[..., 0]
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.asarray(pixels @ weights, dtype=np.float32)
