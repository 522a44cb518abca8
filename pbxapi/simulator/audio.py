"""Deterministic stand-in recordings: bytes that look like an MP3 file, sized by call length."""

from __future__ import annotations

import hashlib

BYTES_PER_SECOND = 2_000  # 16 kbit/s mono, the size class of real call recordings
MAX_BYTES = 4_000_000

# ID3v2.3 header with an empty tag, then MPEG-1 Layer III frame headers (0xFFFB...).
_ID3_HEADER = b"ID3\x03\x00\x00\x00\x00\x00\x00"
_FRAME_HEADER = b"\xff\xfb\x90\x64"
_FRAME_BYTES = 417


def fake_mp3(unique_id: str, seconds: int) -> bytes:
    """A recording's bytes: the same for the same call, about 2 kB per second of talk."""
    size = min(MAX_BYTES, max(BYTES_PER_SECOND, seconds * BYTES_PER_SECOND))
    body = bytearray(_ID3_HEADER)
    block = hashlib.sha256(unique_id.encode()).digest()
    while len(body) < size:
        body += _FRAME_HEADER
        # Frame payload: a hash chain, so the content depends on the call and never repeats.
        payload = bytearray()
        while len(payload) < _FRAME_BYTES - len(_FRAME_HEADER):
            block = hashlib.sha256(block).digest()
            payload += block
        body += payload[: _FRAME_BYTES - len(_FRAME_HEADER)]
    return bytes(body[:size])
