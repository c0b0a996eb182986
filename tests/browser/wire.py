"""When the server's messages leave it: a pass-through TCP proxy between the browser and a Streamlit server
that timestamps every ForwardMsg on the wire.

Why not the page's own websocket events (``harness.RerunWatcher``)? Chromium reports a frame when the page's
main thread dispatches it, and on a page of charts that thread is busy drawing the first messages of a
rerun while the last ones wait in the socket. On Gradient flow, ``python bench/bench_ui.py --cold 0
--pages gradient_flow`` reads ``script_finished`` on the wire at 46 ms (median) and in the page at 92 ms;
a one-off probe that logged app.py's start and end on the server saw the script end 41 ms after the key
press and the page read its last message at 107-164 ms, behind a 92 ms Plotly task. The wire is where "the server's end of the rerun" is; the page's reading of it is
reported beside it (bench/bench_ui.py).

Every connection is forwarded byte for byte. Responses that upgrade to a websocket are parsed as
RFC 6455 frames (server to client: unmasked; the permessage-deflate extension is not negotiated, as
Streamlit leaves it off by default, and a compressed frame is refused loudly). Both sides have Nagle's
algorithm off, and the proxy acknowledges the server's segments at once (TCP_QUICKACK, which Linux clears
after each one), as Chromium does: a stock Streamlit server keeps Nagle on, and a delayed acknowledgement
would hold its next message 40 ms (dashboard/transport.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from harness import free_port, parse_message

SMALL = 4096  # bytes: larger messages (elements, charts) are not parsed, only framed


class WireClock:
    """A proxy on 127.0.0.1 in front of ``upstream_port``; ``url`` is what the browser opens.

    ``finished`` counts ``script_finished`` messages, ``last_finished_at`` is the time.perf_counter()
    at which the last one arrived from the server, ``last_started_at`` when the last rerun's first
    "script is running" did. Use as a context manager."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.finished = 0
        self.last_finished_at = 0.0
        self.last_started_at = 0.0
        self.error: str | None = None
        self._running = False
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> WireClock:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._ForwardMsg = ForwardMsg
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._running = True
        threading.Thread(target=self._accept, name="wire-accept", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._running = False
        with self._lock:
            for s in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_and_read, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _pump_and_read(self, server: socket.socket, client: socket.socket) -> None:
        """Forward the server's bytes, timestamping each websocket message as its last byte arrives."""
        frames = Frames(self._on_message)
        with contextlib.suppress(OSError):
            while True:
                server.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)  # cleared by Linux after each ACK
                data = server.recv(65536)
                if not data:
                    break
                at = time.perf_counter()
                try:
                    frames.feed(data, at)
                except ValueError as e:  # noqa: PERF203 - a stream we cannot read is reported, and still forwarded
                    self.error = self.error or str(e)
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def _on_message(self, payload: bytes, at: float) -> None:
        if len(payload) > SMALL:
            return
        msg = parse_message(self._ForwardMsg, payload)
        if msg is None:
            return
        kind = msg.WhichOneof("type")
        with self._lock:
            if kind == "script_finished":
                self.finished += 1
                self.last_finished_at = at
            elif kind == "session_status_changed" and msg.session_status_changed.script_is_running:
                self.last_started_at = at

    def wait_finished(self, after: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.finished <= after:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no script_finished on the wire after {timeout:.0f} s")
            time.sleep(0.002)


class Frames:
    """A server-to-client byte stream: the HTTP response head, then (after a 101 Switching Protocols)
    websocket frames; ``on_message(payload, at)`` for every complete data message. Anything that is
    not an upgrade is passed over."""

    def __init__(self, on_message):
        self.on_message = on_message
        self.buf = bytearray()
        self.mode = "head"  # head -> ws, or head -> http (not parsed)
        self.parts: list[bytes] = []

    def feed(self, data: bytes, at: float) -> None:
        if self.mode == "http":
            return
        self.buf += data
        if self.mode == "head":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            self.mode = "ws" if b" 101 " in status else "http"
            del self.buf[: end + 4]
            if self.mode == "http":
                self.buf.clear()
                return
        while (frame := self._frame()) is not None:
            fin, opcode, payload = frame
            if opcode in (0x1, 0x2, 0x0):
                self.parts.append(payload)
                if fin:
                    self.on_message(b"".join(self.parts), at)
                    self.parts = []

    def _frame(self) -> tuple[bool, int, bytes] | None:
        b = self.buf
        if len(b) < 2:
            return None
        fin, rsv, opcode = bool(b[0] & 0x80), b[0] & 0x70, b[0] & 0x0F
        if rsv:
            raise ValueError("a compressed websocket frame (permessage-deflate): turn compression off")
        masked, n, at = bool(b[1] & 0x80), b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, at = int.from_bytes(b[2:4], "big"), 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, at = int.from_bytes(b[2:10], "big"), 10
        key = b[at : at + 4] if masked else b""
        at += 4 if masked else 0
        if len(b) < at + n:
            return None
        payload = bytes(b[at : at + n])
        if masked:
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        del b[: at + n]
        return fin, opcode, payload
