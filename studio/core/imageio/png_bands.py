"""PNG encoded a band of rows at a time, for pictures too big to encode in one piece.

libpng (through imagecodecs) encodes a whole array into one buffer as large as the picture;
here each band of rows is Paeth-filtered with numpy and fed to one zlib stream, so memory
beyond the samples is one band.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from studio.core.imageio.decoded import Samples

PNG_BANDS_ABOVE = 64 * 2**20  # bytes of samples beyond which a PNG is encoded in bands
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels: grey, grey+alpha, RGB, RGBA
_PAETH = 4
_BAND_BYTES = 2**18  # the filter holds about 20 times this


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_in_bands(
    path: Path, colour: Samples, alpha: Samples | None, chunks: list[bytes]
) -> None:
    """Write (H, W, C) uint8 or uint16 `colour` (and (H, W) `alpha`) as a PNG, with `chunks`
    (metadata) after the header."""
    height, width, channels = colour.shape
    channels += alpha is not None
    bits = colour.dtype.itemsize * 8
    header = struct.pack(">IIBBBBB", width, height, bits, _COLOUR_TYPES[channels], 0, 0, 0)
    row_bytes = width * channels * colour.dtype.itemsize
    band_rows = max(1, _BAND_BYTES // row_bytes)
    compressor = zlib.compressobj(6)
    above = np.zeros(row_bytes, dtype=np.uint8)
    with path.open("wb") as stream:
        stream.write(_SIGNATURE + png_chunk(b"IHDR", header) + b"".join(chunks))
        for top in range(0, height, band_rows):
            rows = _big_endian_rows(colour, alpha, top, top + band_rows)
            data = compressor.compress(_paeth_filtered(rows, above, channels * bits // 8))
            if data:
                stream.write(png_chunk(b"IDAT", data))
            above = rows[-1]
        stream.write(png_chunk(b"IDAT", compressor.flush()) + png_chunk(b"IEND", b""))


def _big_endian_rows(colour: Samples, alpha: Samples | None, top: int, bottom: int) -> Samples:
    """Rows `top` to `bottom` as (n, row bytes) uint8, samples big-endian as PNG stores them."""
    band = colour[top:bottom]
    if alpha is not None:
        band = np.concatenate([band, alpha[top:bottom, :, None]], axis=2)
    band = band.astype(band.dtype.newbyteorder(">"), copy=False)
    return np.ascontiguousarray(band).view(np.uint8).reshape(len(band), -1)


def _paeth_filtered(rows: Samples, above: Samples, pixel_bytes: int) -> bytes:
    """Each row prefixed by filter type 4 (Paeth) and replaced by its difference to the Paeth
    predictor of its left, upper and upper-left bytes."""
    current = rows.astype(np.int16)
    up = np.concatenate([above[None].astype(np.int16), current[:-1]])
    left = np.zeros_like(current)
    left[:, pixel_bytes:] = current[:, :-pixel_bytes]
    up_left = np.zeros_like(current)
    up_left[:, pixel_bytes:] = up[:, :-pixel_bytes]
    to_left, to_up = np.abs(up - up_left), np.abs(left - up_left)
    to_up_left = np.abs(left + up - 2 * up_left)
    predictor = np.where(
        (to_left <= to_up) & (to_left <= to_up_left),
        left,
        np.where(to_up <= to_up_left, up, up_left),
    )
    out = np.empty((len(rows), rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = _PAETH
    out[:, 1:] = (current - predictor).astype(np.uint8)
    return out.tobytes()
