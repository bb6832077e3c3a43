"""The limit on request bodies, for every door: refused before they are read, or as soon as they pass it.

A body that declares its length (``Content-Length``) over the limit is refused before a byte of
it is read; a chunked body is counted while it is read and refused once it passes the limit, so
the service never holds more than :data:`MAX_REQUEST_BYTES` of one request.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from werkzeug.exceptions import RequestEntityTooLarge

__all__ = ["MAX_REQUEST_BYTES", "CountedBody", "check_request_body"]

#: Largest request body any door takes, in bytes (16 MiB): the largest legitimate one is a 10 MB
#: CSV file as base64 (about 14 MB) in a REST JSON body. The WS-Management door has its own,
#: smaller limit (``shim.wsman.constants.MAX_REQUEST_BYTES``).
MAX_REQUEST_BYTES = 16 * 1024 * 1024


class CountedBody:
    """A request body stream that raises RequestEntityTooLarge once more than ``limit`` bytes are read."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._read = 0

    def _count(self, data: bytes) -> bytes:
        self._read += len(data)
        if self._read > self._limit:
            raise RequestEntityTooLarge()
        return data

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative), counted against the limit."""
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(64 * 1024):
                chunks.append(chunk)
            return b"".join(chunks)
        return self._count(self._stream.read(min(size, self._limit + 1 - self._read) or 1))

    def readline(self, size: int = -1) -> bytes:
        """One line, counted against the limit."""
        room = self._limit + 1 - self._read
        return self._count(self._stream.readline(room if size is None or size < 0 else min(size, room)))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def close(self) -> None:
        """Close the underlying stream."""
        self._stream.close()


def check_request_body(environ: dict[str, Any], limit: int = MAX_REQUEST_BYTES) -> None:
    """Refuse a declared length over ``limit`` now; count an undeclared (chunked) body while it is read.

    Raises:
        RequestEntityTooLarge: ``Content-Length`` is over ``limit``.
    """
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        try:
            length = int(declared)
        except ValueError:
            return  # werkzeug answers a malformed length
        if length > limit:
            raise RequestEntityTooLarge()
        return
    environ["wsgi.input"] = CountedBody(environ["wsgi.input"], limit)
