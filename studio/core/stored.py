"""Results too big to hold in float32: pixels assembled row band by row band in the sample type
they will be written in (16-bit for integer photos, float32 for float photos).

An upscale of a 24-MP photo at 4x is 384 MP: 4.6 GB in float32, 2.3 GB in 16-bit. Engines
that enlarge write their finished rows into a `SampleStore`; the writers encode its samples
without a full-size conversion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from studio.core.image import FloatArray, Image, ImageMeta

Samples = npt.NDArray[Any]
_TOP_16 = 65535
_BAND_BYTES = 2**18  # samples converted at a time, so no conversion is full-size


def quantise(values: FloatArray, depth: int) -> Samples:
    """[0, 1] values as `depth`-bit integers (clipped, rounded; NaN is 0); 32 keeps float32."""
    if depth == 32:
        return np.asarray(values, dtype=np.float32)
    top = 255 if depth == 8 else _TOP_16
    scaled = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(scaled, 0.0, 1.0, out=scaled)
    scaled *= top
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8 if depth == 8 else np.uint16)


def store_depth(meta: ImageMeta) -> int:
    """The depth a result of a photo with `meta` is stored at: float stays float, anything
    else is kept at 16 bits (finer than any integer output needs)."""
    return 32 if meta.is_float else 16


def depth_of(samples: Samples) -> int:
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(samples.dtype, 32)


def as_float(samples: Samples) -> FloatArray:
    """Samples as float32: integers scaled to [0, 1], float unchanged (a copy either way)."""
    depth = depth_of(samples)
    if depth == 32:
        return np.array(samples, dtype=np.float32)
    out = samples.astype(np.float32)
    out *= np.float32(1.0 / (255 if depth == 8 else _TOP_16))
    return out


def band_rows(samples: Samples) -> int:
    """How many rows of `samples` to convert at a time."""
    return max(1, _BAND_BYTES // max(1, samples[:1].nbytes))


def converted(samples: Samples, depth: int) -> Samples:
    """`samples` at `depth` (8, 16 or 32), converted a band of rows at a time; the same array
    when it already is."""
    if depth_of(samples) == depth:
        return samples
    dtype = {8: np.uint8, 16: np.uint16}.get(depth, np.float32)
    out = np.empty(samples.shape, dtype=dtype)
    rows = band_rows(samples)
    for y in range(0, len(samples), rows):
        out[y : y + rows] = quantise(as_float(samples[y : y + rows]), depth)
    return out


class SampleStore:
    """An (height, width, C) image filled with finished rows of float32 values.

    Each `put` quantises its rows to 16 bits, or keeps them as float32 (`depth` 32); the
    channel count comes from the first rows put.
    """

    def __init__(self, height: int, width: int, depth: int) -> None:
        self.height, self.width, self.depth = height, width, depth
        self._samples: Samples | None = None

    def put(self, top: int, rows: FloatArray) -> None:
        """Store `rows` (n, width, C) as rows `top` to `top + n`."""
        if self._samples is None:
            dtype = np.float32 if self.depth == 32 else np.uint16
            self._samples = np.empty((self.height, self.width, rows.shape[2]), dtype=dtype)
        step = band_rows(rows)
        for y in range(0, len(rows), step):
            band = rows[y : y + step]
            start = top + y
            self._samples[start : start + len(band)] = quantise(band, self.depth)

    @property
    def samples(self) -> Samples:
        assert self._samples is not None, "no rows were put"
        return self._samples


@dataclass(frozen=True)
class StoredImage:
    """A result held as (H, W, C) samples of its stored depth (uint16, or float32 for float
    photos), with the metadata and alpha ((H, W), same type) of `Image`."""

    samples: Samples
    meta: ImageMeta
    alpha: Samples | None = None

    @property
    def height(self) -> int:
        return int(self.samples.shape[0])

    @property
    def width(self) -> int:
        return int(self.samples.shape[1])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[2])

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    def with_step(self, step: str) -> StoredImage:
        return dataclasses.replace(self, meta=self.meta.with_step(step))

    def to_image(self) -> Image:
        """The full-size float32 `Image` (for a next step or the window)."""
        alpha = None if self.alpha is None else as_float(self.alpha)
        return Image(as_float(self.samples), self.meta, alpha)


Result = Image | StoredImage


def as_image(result: Result) -> Image:
    """`result` as a float32 `Image` (converting a stored one)."""
    return result.to_image() if isinstance(result, StoredImage) else result
