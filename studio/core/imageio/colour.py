"""Colour conversions: CMYK and CIELab files into sRGB, and linear-light photos (camera RAW)
into sRGB-encoded ones."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io

import numpy as np
from PIL import Image as PILImage
from PIL import ImageCms

from studio.core.image import FloatArray, Image
from studio.core.imageio.decoded import Samples

# XYZ (D50, as TIFF and ICC Lab use) to linear sRGB, Bradford-adapted to D65.
_XYZ_D50_TO_SRGB = np.array(
    [
        [3.1338561, -1.6168667, -0.4906146],
        [-0.9787684, 1.9161415, 0.0334540],
        [0.0719453, -0.2289914, 1.4052427],
    ],
    dtype=np.float32,
)
_D50_WHITE = np.array([0.96422, 1.0, 0.82521], dtype=np.float32)
_BAND_ROWS = 256  # rows encoded at a time: the curve's temporaries stay small


@functools.cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (what CMYK and Lab pictures are converted into)."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def cmyk_picture_to_rgb(picture: PILImage.Image, icc: bytes | None) -> tuple[Samples, bytes | None]:
    """Colour-manage CMYK into sRGB through its profile; plain arithmetic when there is none."""
    if icc:
        with contextlib.suppress(ImageCms.PyCMSError, OSError):
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            rgb = ImageCms.profileToProfile(picture, source, target, outputMode="RGB")
            if rgb is not None:
                return np.asarray(rgb), srgb_profile()
    return np.asarray(picture.convert("RGB")), None


def cmyk_arithmetic(cmyk: Samples) -> Samples:
    """RGB from uncalibrated CMYK samples, in the samples' own type."""
    scale = 1.0 if cmyk.dtype.kind == "f" else float(np.iinfo(cmyk.dtype).max)
    ink = cmyk.astype(np.float32) / scale
    rgb = (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:4])
    return (rgb * scale).round().astype(cmyk.dtype) if scale != 1.0 else rgb


def lab_to_srgb(lightness: Samples, a: Samples, b: Samples) -> Samples:
    """16-bit sRGB from CIE L* (0-100), a* and b* (D50), out-of-gamut colours clipped."""
    fy = (lightness.astype(np.float32) + 16.0) / 116.0
    f = np.stack([fy + a.astype(np.float32) / 500.0, fy, fy - b.astype(np.float32) / 200.0], -1)
    edge = 6.0 / 29.0
    xyz = np.where(f > edge, f**3, 3 * edge**2 * (f - 4.0 / 29.0)) * _D50_WHITE
    encoded = srgb_encode(np.asarray(xyz @ _XYZ_D50_TO_SRGB.T, dtype=np.float32))
    return np.asarray(np.rint(encoded * 65535), dtype=np.uint16)


def srgb_encode(linear: Samples) -> Samples:
    """The sRGB transfer curve on linear values, clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.asarray(
        np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055), np.float32
    )


def srgb_decode(encoded: Samples) -> Samples:
    """Linear values of sRGB-encoded ones, clipped to [0, 1]."""
    x = np.clip(encoded, 0.0, 1.0)
    return np.asarray(
        np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)), np.float32
    )


def encode_srgb_rows(linear: FloatArray) -> FloatArray:
    """`srgb_encode` of (H, W, C) pixels a band of rows at a time (bounded temporaries)."""
    out = np.empty(linear.shape, dtype=np.float32)
    for top in range(0, linear.shape[0], _BAND_ROWS):
        out[top : top + _BAND_ROWS] = srgb_encode(linear[top : top + _BAND_ROWS])
    return out


def srgb_encoded(image: Image) -> Image:
    """A linear-light photo (`ImageMeta.is_linear_photo`: a camera RAW) as the sRGB-encoded
    photo that displays, engines and 8/16-bit files expect, tagged with the sRGB profile;
    any other image is returned as it is."""
    if not image.meta.is_linear_photo:
        return image
    meta = dataclasses.replace(image.meta, linear=False, icc_profile=srgb_profile())
    return Image(encode_srgb_rows(image.pixels), meta, image.alpha)
