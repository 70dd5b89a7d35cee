"""Reading a request body within a size limit.

A body is refused by its declared length before any byte is read, and by the bytes actually received
when the length is not declared or lies.
"""

from __future__ import annotations

from fastapi import Request

from microfleet.errors import PayloadTooLargeError


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The whole body, or :class:`PayloadTooLargeError` (413) once it passes ``limit_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise PayloadTooLargeError(f"the body is {declared} bytes; at most {limit_bytes} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise PayloadTooLargeError(f"the body exceeds {limit_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
