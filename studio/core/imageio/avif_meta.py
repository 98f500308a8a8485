"""ICC, EXIF and XMP added to an AVIF file that libavif wrote without them (ISO/IEC 23008-12).

imagecodecs encodes 12-bit AVIF but takes no metadata. The file it writes is one still
picture: `ftyp`, `meta` and `mdat`, its item located by file offset. The ICC profile becomes a
second `colr` property of the primary item; EXIF and XMP become items of their own, described
in `iinf`, linked to the picture by `cdsc` references (beside an alpha plane's `auxl`) and
stored at the end of `mdat`. The
offsets of every item move by what `meta` grew. Anything else in the file is refused (a
`ValueError`), never guessed.

`declared_size` reads the size an AVIF or HEIF file promises, so bombs are refused undecoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_FULL_BOX_HEADER = 4  # version (1 byte) and flags (3 bytes)


@dataclass
class _Location:
    item: int
    extents: list[tuple[int, int]]  # (file offset, length)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _children(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of each box in `data`; 64-bit and to-the-end sizes are refused."""
    boxes, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8]) if at + 8 <= len(data) else (0, b"")
        if size < 8 or at + size > len(data):
            raise ValueError("unsupported AVIF box layout")
        boxes.append((kind, data[at + 8 : at + size]))
        at += size
    return boxes


def _uint(data: bytes, at: int, size: int) -> tuple[int, int]:
    return int.from_bytes(data[at : at + size], "big"), at + size


def _read_iloc(payload: bytes) -> tuple[tuple[int, int], list[_Location]]:
    version = payload[0]
    if version > 1:
        raise ValueError("unsupported AVIF item locations")
    offset_size, length_size = payload[4] >> 4, payload[4] & 15
    base_size, index_size = payload[5] >> 4, (payload[5] & 15) if version == 1 else 0
    count, at = _uint(payload, 6, 2)
    locations = []
    for _ in range(count):
        item, at = _uint(payload, at, 2)
        if version == 1:
            method, at = _uint(payload, at, 2)
            if method & 15:
                raise ValueError("AVIF item stored inside meta")
        at += 2  # data_reference_index
        base, at = _uint(payload, at, base_size)
        extent_count, at = _uint(payload, at, 2)
        extents = []
        for _ in range(extent_count):
            at += index_size
            offset, at = _uint(payload, at, offset_size)
            length, at = _uint(payload, at, length_size)
            if length == 0:  # "to the end of the file": appended data would join it
                raise ValueError("unsupported AVIF item extent")
            extents.append((base + offset, length))
        locations.append(_Location(item, extents))
    return (offset_size, length_size), locations


def _write_iloc(sizes: tuple[int, int], locations: list[_Location], shift: int) -> bytes:
    offset_size, length_size = max(sizes[0], 4), max(sizes[1], 4)
    body = bytearray([offset_size << 4 | length_size, 0]) + struct.pack(">H", len(locations))
    for location in locations:
        body += struct.pack(">HHH", location.item, 0, len(location.extents))
        for offset, length in location.extents:
            if offset + shift >= 1 << (8 * offset_size):
                raise ValueError("AVIF file too large for its item offsets")
            body += (offset + shift).to_bytes(offset_size, "big")
            body += length.to_bytes(length_size, "big")
    return _full_box(b"iloc", 0, 0, bytes(body))


def _infe(item: int, kind: bytes, content_type: bytes = b"") -> bytes:
    extra = content_type + b"\x00" if content_type else b""
    return _full_box(b"infe", 2, 0, struct.pack(">HH", item, 0) + kind + b"\x00" + extra)


def _iinf_with(payload: bytes, entries: list[bytes]) -> bytes:
    version = payload[0]
    count_size = 2 if version == 0 else 4
    count, _ = _uint(payload, 4, count_size)
    body = (count + len(entries)).to_bytes(count_size, "big") + payload[4 + count_size :]
    return _full_box(b"iinf", version, 0, body + b"".join(entries))


def _ipma_with(payload: bytes, primary: int, prop: int) -> bytes:
    version, flags = payload[0], int.from_bytes(payload[1:4], "big")
    id_size, wide = (2 if version == 0 else 4), bool(flags & 1)
    count, at = _uint(payload, 4, 4)
    body = bytearray(payload[4:8])
    found = False
    for _ in range(count):
        item, at = _uint(payload, at, id_size)
        associations, at = _uint(payload, at, 1)
        entry_size = (2 if wide else 1) * associations
        entries = payload[at : at + entry_size]
        at += entry_size
        if item == primary and associations < 255:
            found, associations = True, associations + 1
            entries += prop.to_bytes(2 if wide else 1, "big")
        body += item.to_bytes(id_size, "big") + bytes([associations]) + entries
    if not found:
        raise ValueError("unsupported AVIF item properties")
    return _full_box(b"ipma", version, flags, bytes(body))


def _iprp_with_icc(payload: bytes, primary: int, icc: bytes) -> bytes:
    children = _children(payload)
    if [kind for kind, _ in children] != [b"ipco", b"ipma"]:
        raise ValueError("unsupported AVIF item properties")
    boxes = dict(children)
    properties = boxes[b"ipco"] + _box(b"colr", b"prof" + icc)
    index = len(_children(properties))  # 1-based index of the new property
    if index > 127:
        raise ValueError("too many AVIF item properties")
    return _box(b"iprp", _box(b"ipco", properties) + _ipma_with(boxes[b"ipma"], primary, index))


def with_metadata(avif: bytes, icc: bytes | None, exif: bytes | None, xmp: bytes | None) -> bytes:
    """`avif` with the ICC profile, EXIF (TIFF bytes) and XMP packet that are given."""
    top = _children(avif)
    if [kind for kind, _ in top] != [b"ftyp", b"meta", b"mdat"]:
        raise ValueError("unsupported AVIF file layout")
    (_, ftyp), (_, meta), (_, mdat) = top
    children = _children(meta[_FULL_BOX_HEADER:])
    kinds = [kind for kind, _ in children]
    if b"idat" in kinds or any(kinds.count(kind) > 1 for kind in (b"iloc", b"iref")):
        raise ValueError("unsupported AVIF metadata layout")
    boxes = dict(children)
    if boxes.get(b"iref", b"\x00")[0] != 0:  # version 1: 32-bit item numbers
        raise ValueError("unsupported AVIF item references")
    if boxes.get(b"pitm", b"\x01")[0] != 0 or b"iinf" not in boxes or b"iprp" not in boxes:
        raise ValueError("unsupported AVIF metadata layout")
    primary = int.from_bytes(boxes[b"pitm"][4:6], "big")
    sizes, locations = _read_iloc(boxes[b"iloc"])
    payloads = []
    if exif:
        payloads.append((b"Exif", b"", b"\x00" * 4 + exif))  # 0: the TIFF header comes first
    if xmp:
        payloads.append((b"mime", b"application/rdf+xml", xmp))
    first = max([primary, *(location.item for location in locations)]) + 1
    extra = b"".join(data for _, _, data in payloads)
    growth = len(extra) + len(icc or b"") + 2**16  # meta grows by less than 64 KiB besides
    if first + len(payloads) > 0xFFFF or len(avif) + growth > 0xFFFFFFFF:
        raise ValueError("AVIF file too large for Studio to add metadata to")
    at = (8 + len(ftyp)) + (8 + len(meta)) + (8 + len(mdat))  # the end of the file, as it is
    entries, references = [], b""
    for item, (kind, content_type, data) in enumerate(payloads, start=first):
        locations.append(_Location(item, [(at, len(data))]))
        entries.append(_infe(item, kind, content_type))
        references += _box(b"cdsc", struct.pack(">HHH", item, 1, primary))
        at += len(data)
    new_iref = _full_box(b"iref", 0, 0, references) if references and b"iref" not in kinds else b""

    def build(shift: int) -> bytes:
        parts = []
        for kind, payload in children:
            if kind == b"iloc":
                parts.append(_write_iloc(sizes, locations, shift))
            elif kind == b"iinf":
                parts.append(_iinf_with(payload, entries) + new_iref)
            elif kind == b"iref":  # the alpha plane's: the new references join it
                parts.append(_box(kind, payload + references))
            elif kind == b"iprp" and icc:
                parts.append(_iprp_with_icc(payload, primary, icc))
            else:
                parts.append(_box(kind, payload))
        return _box(b"meta", meta[:_FULL_BOX_HEADER] + b"".join(parts))

    shift = len(build(0)) - (8 + len(meta))  # fixed-width offsets: the size does not change
    return _box(b"ftyp", ftyp) + build(shift) + _box(b"mdat", mdat + extra)


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each box in `data`, stopping quietly at a damaged size."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1 and at + 16 <= len(data):  # a 64-bit size follows the type
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        end = len(data) if size == 0 else at + size
        if end < at + header:
            return
        yield kind, data[at + header : end]
        at = end


def _find_box(data: bytes, kind: bytes) -> bytes | None:
    return next((payload for found, payload in _boxes(data) if found == kind), None)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The largest (width, height) among the 'ispe' properties of an AVIF/HEIF file: the size
    its header promises, read without decoding. None when the file has no such property."""
    meta = _find_box(data, b"meta")
    iprp = None if meta is None else _find_box(meta[_FULL_BOX_HEADER:], b"iprp")
    ipco = None if iprp is None else _find_box(iprp, b"ipco")
    sizes = [
        struct.unpack(">II", payload[4:12])
        for kind, payload in _boxes(ipco or b"")
        if kind == b"ispe" and len(payload) >= 12
    ]
    return max(sizes, key=lambda size: size[0] * size[1], default=None)
