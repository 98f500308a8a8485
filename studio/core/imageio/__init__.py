"""Image I/O that loses nothing: bit depth, alpha, EXIF, ICC profile and XMP survive a round trip.

Reads JPEG, PNG (8/16-bit), TIFF (8/16/32-bit integer, float, bilevel, palette, CMYK, CIELab),
WebP, AVIF, JPEG XL, HEIC/HEIF, Radiance HDR, OpenEXR and camera RAW files (rawpy); the format
is sniffed from the content, not the name. Pictures are turned upright by their EXIF orientation
on reading. Writes every format but RAW, through a temporary file in the target folder that
replaces the target only once complete. What is repaired or lost on the way is said in a notice
(a warning on the ``studio.core.imageio`` logger).
"""

from studio.core.imageio.colour import srgb_encoded, srgb_profile
from studio.core.imageio.formats import (
    DEFAULT_MAX_PIXELS,
    OUTPUT_FORMATS,
    RAW_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    WRITABLE_EXTENSIONS,
    check_writable,
    pixel_limit,
)
from studio.core.imageio.reading import (
    is_image_file,
    read_hints,
    read_image,
    read_mask,
    repair_non_finite,
)
from studio.core.imageio.writing import write_file_atomically, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "OUTPUT_FORMATS",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "check_writable",
    "is_image_file",
    "pixel_limit",
    "read_hints",
    "read_image",
    "read_mask",
    "repair_non_finite",
    "srgb_encoded",
    "srgb_profile",
    "write_file_atomically",
    "write_image",
]
