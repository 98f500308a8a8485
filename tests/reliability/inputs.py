"""Hostile and unusual image files, made with independent writers (Pillow, tifffile, bytes).

`BROKEN` files must be refused with a clear error; `ODD` files are valid pictures in unusual
encodings that must give a correct result. Each `ODD` maker returns the file and its pixels as
an independent decoder sees them: float32 (H, W, C) colour in [0, 1] and the alpha, if any.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image as PILImage

SIZE = (20, 28)  # height, width: small, and not a multiple of anything
Decoded = tuple[np.ndarray, np.ndarray | None]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rgb(seed: int, shape: tuple[int, ...] = (*SIZE, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """`jpeg` with an extra APP1 segment right after the SOI marker."""
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header promises `width` x `height` pixels, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _tiff_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, photometric="rgb")
    return buffer.getvalue()


# --- files that must be refused -------------------------------------------------------------


def _corrupt_png_header() -> bytes:
    data = bytearray(_png_bytes(_rgb(1)))
    data[16:24] = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # width 4294967295, height 0, CRC now wrong
    return bytes(data)


def _corrupt_jpeg_header() -> bytes:
    data = bytearray(_jpeg_bytes(_rgb(2)))
    sof = data.index(b"\xff\xc0")
    data[sof + 4] = 0  # sample precision 0
    data[sof + 9] = 77  # 77 components
    return bytes(data)


def _jpeg_bomb() -> bytes:
    data = bytearray(_jpeg_bytes(_rgb(3, (8, 8, 3))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


BROKEN: dict[str, Callable[[], tuple[str, bytes]]] = {
    "zero-byte": lambda: ("empty.jpg", b""),
    "truncated-jpeg": lambda: ("cut.jpg", _jpeg_bytes(_rgb(4))[:300]),
    "truncated-png": lambda: ("cut.png", _png_bytes(_rgb(5))[:-200]),
    "truncated-tiff": lambda: ("cut.tif", _tiff_bytes(_rgb(6))[:-300]),
    "wrong-extension-text": lambda: ("notes.png", b"shopping list\nmilk\neggs\n"),
    "wrong-extension-pdf": lambda: ("scan.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\n"),
    "corrupt-png-header": lambda: ("header.png", _corrupt_png_header()),
    "corrupt-jpeg-header": lambda: ("header.jpg", _corrupt_jpeg_header()),
    "png-bomb": lambda: ("bomb.png", _png_claiming(100_000, 100_000)),
    "jpeg-bomb": lambda: ("bomb.jpg", _jpeg_bomb()),
}


def make_broken(folder: Path, case: str) -> Path:
    name, data = BROKEN[case]()
    path = folder / name
    path.write_bytes(data)
    return path


# --- valid files in unusual encodings --------------------------------------------------------


def _scaled(samples: np.ndarray) -> np.ndarray:
    top = 65535.0 if samples.dtype == np.uint16 else 255.0
    values = samples.astype(np.float32) / top
    return values if values.ndim == 3 else values[..., None]


def _one_pixel(folder: Path) -> tuple[Path, Decoded]:
    pixels = np.array([[[12, 200, 77]]], np.uint8)
    path = folder / "dot.png"
    PILImage.fromarray(pixels).save(path)
    return path, (_scaled(pixels), None)


def _cmyk(folder: Path) -> tuple[Path, Decoded]:
    path = folder / "print.jpg"
    PILImage.fromarray(_rgb(7, (*SIZE, 4)), "CMYK").save(path, quality=95)
    with PILImage.open(path) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    return path, (_scaled(rgb), None)


def _palette(folder: Path) -> tuple[Path, Decoded]:
    path = folder / "gif_like.png"
    PILImage.fromarray(_rgb(8)).quantize(16).save(path)
    with PILImage.open(path) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    return path, (_scaled(rgb), None)


def _palette_transparent(folder: Path) -> tuple[Path, Decoded]:
    path = folder / "sticker.png"
    PILImage.fromarray(_rgb(9)).quantize(8).save(path, transparency=2)
    with PILImage.open(path) as picture:
        rgba = np.asarray(picture.convert("RGBA"))
    return path, (_scaled(rgba[..., :3]), _scaled(rgba[..., 3])[..., 0])


def _grey16(folder: Path) -> tuple[Path, Decoded]:
    samples = np.random.default_rng(10).integers(0, 65536, SIZE, dtype=np.uint16)
    path = folder / "scan16.png"
    PILImage.fromarray(samples).save(path)
    return path, (_scaled(samples), None)


def _alpha(folder: Path) -> tuple[Path, Decoded]:
    rgba = _rgb(11, (*SIZE, 4))
    path = folder / "cutout.png"
    PILImage.fromarray(rgba).save(path)
    return path, (_scaled(rgba[..., :3]), _scaled(rgba[..., 3])[..., 0])


def _jpeg_with_exif(name: str, payload: bytes) -> Callable[[Path], tuple[Path, Decoded]]:
    def make(folder: Path) -> tuple[Path, Decoded]:
        path = folder / name
        path.write_bytes(_with_app1(_jpeg_bytes(_rgb(12)), b"Exif\x00\x00" + payload))
        with PILImage.open(path) as picture:
            rgb = np.asarray(picture.convert("RGB"))
        return path, (_scaled(rgb), None)

    return make


def _ifd(entries: int, body: bytes) -> bytes:
    return b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", entries) + body


def _png_named_jpg(folder: Path) -> tuple[Path, Decoded]:
    pixels = _rgb(13)
    path = folder / "really_a_png.jpg"
    path.write_bytes(_png_bytes(pixels))
    return path, (_scaled(pixels), None)


ODD: dict[str, Callable[[Path], tuple[Path, Decoded]]] = {
    "1x1": _one_pixel,
    "cmyk-jpeg": _cmyk,
    "palette": _palette,
    "palette-transparent": _palette_transparent,
    "grey-16bit": _grey16,
    "alpha": _alpha,
    "png-named-jpg": _png_named_jpg,
    "exif-garbage": _jpeg_with_exif("garbage.jpg", np.random.default_rng(14).bytes(300)),
    "exif-ifd-past-end": _jpeg_with_exif("past_end.jpg", b"II*\x00\xff\xff\xff\x7f"),
    "exif-huge-entry-count": _jpeg_with_exif("count.jpg", _ifd(0xFFFF, b"\x01" * 40)),
    "exif-bad-orientation": _jpeg_with_exif(
        "orient.jpg", _ifd(1, struct.pack("<HHII", 0x0112, 3, 1, 9) + b"\x00" * 4)
    ),
    "exif-self-loop": _jpeg_with_exif(
        "loop.jpg",  # IFD0's next-IFD pointer points back at IFD0
        _ifd(1, struct.pack("<HHII", 0x010F, 2, 4, 0x0041_4243) + struct.pack("<I", 8)),
    ),
}
