"""The wire clock's frame reader (tests/browser/wire.py): RFC 6455 frames split anywhere, every length
encoding, fragments, control frames, masking; a plain HTTP response is passed over; compression refused."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wire import Frames  # noqa: E402

HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def frame(payload: bytes, opcode: int = 0x2, fin: bool = True, mask: bytes | None = None, rsv: int = 0) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 1 << 16:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += mask
    return head + payload


def read(stream: bytes, chunk: int) -> list[tuple[bytes, float]]:
    got = []
    f = Frames(lambda p, at: got.append((p, at)))
    for i in range(0, len(stream), chunk):
        f.feed(stream[i : i + chunk], float(i))
    return got


MESSAGES = [b"", b"x", os.urandom(125), os.urandom(126), os.urandom(65535), os.urandom(70_000)]


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000, 1 << 20])
def test_every_message_is_read_whole_however_the_stream_is_cut(chunk):
    stream = HEAD + b"".join(frame(m) for m in MESSAGES)
    assert [p for p, _ in read(stream, chunk)] == MESSAGES


def test_a_message_is_timed_when_its_last_byte_arrives():
    stream = HEAD + frame(b"abc") + frame(b"defg")
    got = read(stream, len(HEAD) + 4)  # the first frame's last byte arrives with the second chunk
    assert [at for _, at in got] == [len(HEAD) + 4, len(HEAD) + 4]


def test_fragments_are_joined_and_control_frames_skipped():
    stream = HEAD + frame(b"ab", fin=False) + frame(b"ping", opcode=0x9) + frame(b"cd", opcode=0x0, fin=False)
    stream += frame(b"", opcode=0xA) + frame(b"ef", opcode=0x0) + frame(b"next")
    assert [p for p, _ in read(stream, 5)] == [b"abcdef", b"next"]


def test_a_masked_frame_is_unmasked():
    assert [p for p, _ in read(HEAD + frame(b"hello", mask=b"\x01\x02\x03\x04"), 2)] == [b"hello"]


def test_a_plain_http_response_is_not_read_as_frames():
    body = frame(b"looks like a frame")
    stream = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    assert read(stream, 4) == []


def test_a_compressed_frame_is_refused():
    with pytest.raises(ValueError, match="compressed"):
        read(HEAD + frame(b"z", rsv=0x40), 100)
