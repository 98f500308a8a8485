"""Synthetic camera RAW files: a Bayer mosaic written as a DNG with tifffile, which LibRaw reads.

The camera space is linear sRGB (ColorMatrix1 is the XYZ->sRGB matrix under D65), the sensor
sees each channel through `CAMERA_GAINS` (so white balance matters), 12 bits above a black
level of 256, and the capture fields sit in IFD0 as TIFF/EP cameras write them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

CAMERA_GAINS = np.array([0.5, 1.0, 0.8])
BLACK, WHITE = 256, 4256
XYZ_TO_SRGB = [3.2404542, -1.5371385, -0.4985314, -0.9692660, 1.8760108, 0.0415560,
               0.0556434, -0.2040259, 1.0572252]  # fmt: skip


def _rationals(values: np.ndarray | list[float]) -> list[int]:
    return [part for value in values for part in (round(value * 10000), 10000)]


def write_bayer_dng(
    path: Path,
    linear: np.ndarray,
    exposure_time: tuple[int, int] = (1, 125),
    orientation: int = 1,
) -> Path:
    """Write linear RGB `linear` (H, W, 3; 1.0 = sensor white, clipped) as an RGGB DNG."""
    seen = np.clip(linear * CAMERA_GAINS, 0.0, 1.0)
    mosaic = np.empty(linear.shape[:2])
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = seen[0::2, 0::2, 0], seen[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = seen[1::2, 0::2, 1], seen[1::2, 1::2, 2]
    tags = [
        (271, "s", 0, "Studio", True), (272, "s", 0, "Synthetic Bayer", True),
        (274, "H", 1, orientation, True),
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),  # RGGB
        (33434, "2I", 1, exposure_time, True), (33437, "2I", 1, (56, 10), True),
        (34855, "H", 1, 400, True), (42036, "s", 0, "Synthetic 50mm f/1.8", True),
        (50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "Studio Synthetic", True),
        (50714, "H", 1, BLACK, True), (50717, "H", 1, WHITE, True),
        (50721, "2i", 9, _rationals(XYZ_TO_SRGB), True), (50778, "H", 1, 21, True),  # D65
        (50728, "2I", 3, _rationals(CAMERA_GAINS), True),  # AsShotNeutral
    ]  # fmt: skip
    data = np.rint(mosaic * (WHITE - BLACK) + BLACK).astype(np.uint16)
    tifffile.imwrite(path, data, photometric=32803, extratags=tags, metadata=None, subfiletype=0)
    return path
