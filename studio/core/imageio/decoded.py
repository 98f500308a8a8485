"""What a format reader hands back before scaling, orientation and metadata packing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy.typing as npt
from PIL import Image as PILImage

Samples = npt.NDArray[Any]


@dataclass
class Decoded:
    """Samples of one picture with the metadata its file carried."""

    samples: Samples  # (H, W) or (H, W, C), C in 1..4: grey, grey+alpha, RGB, RGBA
    bit_depth: int
    exif: PILImage.Exif = field(default_factory=PILImage.Exif)
    icc: bytes | None = None
    xmp: bytes | None = None
    upright: bool = False  # the decoder already applied the orientation
    premultiplied: bool = False
