"""What a format reader hands back before scaling, orientation and metadata packing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage

from studio.core import exif as exiflib
from studio.core.imageio.formats import notice
from studio.core.stored import Samples as Samples


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
    linear: bool = False  # integer samples of linear light (a camera RAW), not sRGB-encoded


def load_exif_safely(data: bytes | None, path: Path) -> PILImage.Exif:
    """The EXIF in `data` without the fields that cannot be read back (each named in a notice)."""
    try:
        exif = exiflib.load_exif(data)
    except Exception:
        notice(f"{path.name}: its EXIF metadata is unreadable; reading the picture without it")
        return PILImage.Exif()
    for name in exiflib.drop_broken_fields(exif):
        notice(f"{path.name}: ignoring the malformed EXIF field {name}")
    return exif
