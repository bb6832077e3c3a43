"""xpress compression of WS-Management streams (MS-WSMV endnote 134, MS-XCA 2.1-2.2).

A compressed stream is a run of blocks: 2 bytes original length - 1, 2 bytes compressed length
- 1 (little-endian), then the block. A block whose two lengths are equal is stored as it is;
otherwise it is LZ77+Huffman (MS-XCA 2.2). Mailshift sends stored blocks only and decodes both.
Pure functions.
"""

from __future__ import annotations

import struct

from shim.errors import ShimError
from shim.psrp import constants as k

__all__ = ["XpressError", "frame", "framed_size", "unframe"]

_HEADER = struct.Struct("<HH")
_TABLE_BYTES = 256
_SYMBOLS = 512
_MAX_CODE_BITS = 15


class XpressError(ShimError):
    """Raised when a compressed stream is damaged (bad header, bad Huffman table, reads past its end)."""

    category = "InvalidData"
    error_id = "XpressDecodingFailed"


def frame(data: bytes) -> bytes:
    """``data`` as stored (uncompressed) xpress blocks of at most 64 KiB."""
    out = bytearray()
    size = k.MAX_XPRESS_BLOCK_BYTES
    for start in range(0, len(data), size):
        block = data[start:start + size]
        out += _HEADER.pack(len(block) - 1, len(block) - 1) + block
    return bytes(out)


def framed_size(raw_size: int) -> int:
    """Bytes that :func:`frame` makes of ``raw_size`` bytes."""
    blocks = -(-raw_size // k.MAX_XPRESS_BLOCK_BYTES)
    return raw_size + _HEADER.size * blocks


def unframe(data: bytes) -> bytes:
    """The original bytes of an xpress-framed stream.

    Raises:
        XpressError: when the framing or a compressed block is damaged.
    """
    out = bytearray()
    position = 0
    while position < len(data):
        if position + _HEADER.size > len(data):
            raise XpressError("A compressed stream ends inside a block header.")
        original, compressed = (n + 1 for n in _HEADER.unpack_from(data, position))
        position += _HEADER.size
        block = data[position:position + compressed]
        if len(block) != compressed:
            raise XpressError("A compressed stream ends inside a block.")
        position += compressed
        out += block if original == compressed else _lz77_huffman(block, original)
    return bytes(out)


def _decoding_table(lengths: list[int]) -> list[int]:
    table: list[int] = []
    for bits in range(1, _MAX_CODE_BITS + 1):
        for symbol in range(_SYMBOLS):
            if lengths[symbol] == bits:
                table.extend([symbol] * (1 << (_MAX_CODE_BITS - bits)))
    if len(table) != 1 << _MAX_CODE_BITS:
        raise XpressError("A compressed block has an invalid Huffman table.")
    return table


def _lz77_huffman(block: bytes, original: int) -> bytes:
    """Decode one LZ77+Huffman block (MS-XCA 2.2.4) of ``original`` bytes (at most 64 KiB: one table)."""
    if len(block) < _TABLE_BYTES + 4:
        raise XpressError("A compressed block is shorter than its Huffman table.")
    lengths = [0] * _SYMBOLS
    for index in range(_TABLE_BYTES):
        lengths[2 * index] = block[index] & 0x0F
        lengths[2 * index + 1] = block[index] >> 4
    table = _decoding_table(lengths)
    position = _TABLE_BYTES

    def read16() -> int:
        nonlocal position
        if position + 2 > len(block):
            return 0  # reading past the end yields zero bits; a real overrun shows up as a short output
        value = block[position] | (block[position + 1] << 8)
        position += 2
        return value

    next_bits = (read16() << 16) | read16()
    extra = 16
    out = bytearray()

    def consume(count: int) -> None:
        nonlocal next_bits, extra
        next_bits = (next_bits << count) & 0xFFFFFFFF
        extra -= count
        if extra < 0:
            next_bits |= read16() << (-extra)
            extra += 16

    while len(out) < original:
        symbol = table[next_bits >> (32 - _MAX_CODE_BITS)]
        consume(lengths[symbol])
        if symbol < 256:
            out.append(symbol)
            continue
        symbol -= 256
        length = symbol & 0x0F
        offset_bits = symbol >> 4
        if length == 15:
            if position >= len(block):
                raise XpressError("A compressed block ends inside a match length.")
            length = block[position]
            position += 1
            if length == 255:
                if position + 2 > len(block):
                    raise XpressError("A compressed block ends inside a match length.")
                length = block[position] | (block[position + 1] << 8)
                position += 2
                if length < 15:
                    raise XpressError("A compressed block has an invalid match length.")
                length -= 15
            length += 15
        length += 3
        offset = (next_bits >> (32 - offset_bits) if offset_bits else 0) + (1 << offset_bits)
        consume(offset_bits)
        if offset > len(out):
            raise XpressError("A compressed block refers to data before its start.")
        for _ in range(length):
            out.append(out[-offset])
    return bytes(out[:original])
