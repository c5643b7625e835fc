"""Gateway transport compression, as discord.py asks for it in the connection URL.

discord.py sends ``compress=zlib-stream`` (or ``zstd-stream`` when a zstd module is importable, e.g. on
Python 3.14) and expects every websocket frame to finish a flush, so each frame decodes to one whole
JSON payload while the compression context runs across the whole connection.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Protocol


class Encoder(Protocol):
    def encode(self, text: str) -> str | bytes: ...


class PlainJson:
    """No ``compress`` parameter: text frames of plain JSON."""

    def encode(self, text: str) -> str:
        return text


class ZlibStream:
    """One zlib stream per connection; each frame ends with a sync flush (``00 00 ff ff``)."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj()

    def encode(self, text: str) -> bytes:
        return self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)


class ZstdStream:
    """One zstd stream per connection; each frame ends with a block flush. Uses whichever module
    discord.py itself would use: ``zstandard`` or the standard library's ``compression.zstd``."""

    def __init__(self) -> None:
        try:
            import zstandard

            obj = zstandard.ZstdCompressor().compressobj()
            self._encode = lambda data: obj.compress(data) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        except ImportError:
            from compression.zstd import ZstdCompressor  # type: ignore[import-not-found]  # Python 3.14+

            compressor = ZstdCompressor()
            self._encode = lambda data: compressor.compress(data, mode=ZstdCompressor.FLUSH_BLOCK)

    def encode(self, text: str) -> bytes:
        return self._encode(text.encode())


def encoder_for(query: Mapping[str, str]) -> Encoder:
    """Picks the encoder for a connection URL's query; refuses what the server cannot speak."""
    encoding = query.get("encoding", "json")
    if encoding != "json":
        raise ValueError(f"encoding {encoding!r} is not supported (only json)")
    compress = query.get("compress")
    if compress is None:
        return PlainJson()
    if compress == "zlib-stream":
        return ZlibStream()
    if compress == "zstd-stream":
        try:
            return ZstdStream()
        except ImportError as exc:
            raise ValueError("compress=zstd-stream asked for, but no zstd module is installed") from exc
    raise ValueError(f"compress {compress!r} is not supported")
