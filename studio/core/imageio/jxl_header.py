"""What a JPEG XL image header says: its size, integer bit depth and transfer curve.

imagecodecs returns integer samples in the codestream's range (0-1023 for 10 bits) and tags
16-bit files it writes as linear light; Studio needs both facts to read and write faithfully.
Fields follow ISO/IEC 18181-1 (ImageMetadata, ExtraChannelInfo, ColourEncoding).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SIGNATURE = b"\x00\x00\x00\x0cJXL \r\n\x87\n"  # the container's first box
_LINEAR, _SRGB, _ALPHA, _SPOT, _CFA = 8, 13, 0, 2, 5
_GREY, _XYB, _CUSTOM = 1, 2, 2


@dataclass(frozen=True)
class JxlSamples:
    bits: int  # integer bits per sample; 0 for float samples
    linear: bool  # samples are linear light (else sRGB-encoded or unknown)


class _Bits:
    """Least-significant-bit-first fields, as JPEG XL headers store them."""

    def __init__(self, data: bytes) -> None:
        self._value, self._at, self._end = int.from_bytes(data, "little"), 0, 8 * len(data)

    def take(self, count: int) -> int:
        if self._at + count > self._end:
            raise ValueError("JPEG XL header ends early")
        field = (self._value >> self._at) & ((1 << count) - 1)
        self._at += count
        return field

    def u32(self, *choices: tuple[int, int]) -> int:
        """U32: a 2-bit selector picks (bits, offset)."""
        bits, offset = choices[self.take(2)]
        return self.take(bits) + offset if bits else offset

    def enum(self) -> int:
        return self.u32((0, 0), (0, 1), (4, 2), (6, 18))


_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
_RATIOS = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))  # width:height, 1 to 7
_CUSTOM_XY = ((19, 0), (19, 524288), (20, 1048576), (21, 2097152))


def _size_header(bits: _Bits) -> tuple[int, int]:
    """(width, height) from a SizeHeader."""
    small = bits.take(1)  # small: multiples of 8 up to 256
    height = (bits.take(5) + 1) * 8 if small else bits.u32(*_SIZE)
    ratio = bits.take(3)
    if ratio:
        across, down = _RATIOS[ratio - 1]
        return height * across // down, height
    return ((bits.take(5) + 1) * 8 if small else bits.u32(*_SIZE)), height


def _bit_depth(bits: _Bits) -> int:
    if bits.take(1):  # float samples
        bits.u32((0, 32), (0, 16), (0, 24), (6, 1))
        bits.take(4)
        return 0
    return bits.u32((0, 8), (0, 10), (0, 12), (6, 1))


def _extra_channel(bits: _Bits) -> None:
    if bits.take(1):  # all default: 8-bit alpha
        return
    kind = bits.enum()
    _bit_depth(bits)
    bits.u32((0, 0), (0, 3), (0, 4), (3, 1))  # dim_shift
    for _ in range(bits.u32((0, 0), (4, 0), (5, 16), (10, 48))):  # name
        bits.take(8)
    if kind == _ALPHA:
        bits.take(1)
    elif kind == _SPOT:
        bits.take(64)
    elif kind == _CFA:
        bits.u32((0, 1), (2, 0), (4, 3), (8, 19))


def _linear_colour(bits: _Bits) -> bool:
    if bits.take(1):  # all default: sRGB
        return False
    if bits.take(1):  # an ICC profile instead of an enumerated encoding
        return False
    space = bits.enum()
    if space != _XYB and bits.enum() == _CUSTOM:  # white point
        bits.u32(*_CUSTOM_XY), bits.u32(*_CUSTOM_XY)
    if space not in (_GREY, _XYB) and bits.enum() == _CUSTOM:  # primaries
        for _ in range(6):
            bits.u32(*_CUSTOM_XY)
    if bits.take(1):  # a gamma exponent
        return bits.take(24) == 10_000_000  # gamma 1 in units of 1e-7
    return bits.enum() == _LINEAR


def _each_box(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each box in a JPEG XL container (ISO BMFF), in file order."""
    at = 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        header = 8
        if size == 1 and at + 16 <= len(data):  # a 64-bit size follows the type
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        end = len(data) if size == 0 else at + size
        if end <= at:
            break
        yield kind, data[at + header : end]
        at = end


def boxes(data: bytes) -> dict[bytes, bytes]:
    """The payload of the first box of each type in a JPEG XL container."""
    found: dict[bytes, bytes] = {}
    for kind, payload in _each_box(data):
        found.setdefault(kind, payload)
    return found


def _codestream(data: bytes, head: int = 256) -> bytes:
    """At least the first `head` bytes of the codestream (all of it when shorter)."""
    if not data.startswith(SIGNATURE):
        return data
    parts, length = [], 0
    for kind, payload in _each_box(data):
        if kind == b"jxlc":
            return payload
        if kind == b"jxlp":  # a part of the codestream, after a 4-byte index
            parts.append(payload[4:])
            length += len(payload) - 4
            if length >= head:
                break
    return b"".join(parts)


def jxl_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) that a JPEG XL file's header declares; None where it cannot be read."""
    codestream = _codestream(data)
    if not codestream.startswith(b"\xff\x0a"):
        return None
    try:
        return _size_header(_Bits(codestream[2:16]))
    except ValueError:
        return None


def jxl_animated(data: bytes) -> bool:
    """Whether a JPEG XL file's header announces an animation (read where no preview
    header comes before it)."""
    codestream = _codestream(data)
    if not codestream.startswith(b"\xff\x0a"):
        return False
    bits = _Bits(codestream[2:256])
    try:
        _size_header(bits)
        if bits.take(1) or not bits.take(1):  # all-default metadata, or no extra fields
            return False
        bits.take(3)  # orientation
        if bits.take(1):  # intrinsic size
            _size_header(bits)
        return not bits.take(1) and bool(bits.take(1))  # no preview, then have_animation
    except ValueError:
        return False


def jxl_samples(data: bytes) -> JxlSamples | None:
    """The sample description in a JPEG XL file's header; None where it cannot be read
    (a preview or animation header, or a damaged one)."""
    codestream = _codestream(data)
    if not codestream.startswith(b"\xff\x0a"):
        return None
    bits = _Bits(codestream[2:256])
    try:
        _size_header(bits)
        if bits.take(1):  # all-default metadata: 8-bit sRGB
            return JxlSamples(8, linear=False)
        if bits.take(1):  # extra fields
            bits.take(3)
            if bits.take(1):
                _size_header(bits)
            if bits.take(1) or bits.take(1):  # preview or animation: not followed
                return None
        depth = _bit_depth(bits)
        bits.take(1)  # modular_16_bit_buffer_sufficient
        for _ in range(bits.u32((0, 0), (0, 1), (4, 2), (12, 1))):
            _extra_channel(bits)
        bits.take(1)  # xyb_encoded
        return JxlSamples(depth, _linear_colour(bits))
    except ValueError:
        return None
