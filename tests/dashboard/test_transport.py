"""Nagle's algorithm off on the server's sockets (dashboard/transport.py).

In process: a listener made the way Streamlit 1.67 makes its own (``socket.socket(family)``, protocol
number 0, which asyncio's TCP_NODELAY skips) gives connections with Nagle on; after
``send_without_delay`` the connection already open and every later one have TCP_NODELAY.
On a real server: the test reads the server's own sockets (``pidfd_getfd``, Linux 5.6+) once a
session has run, for the dashboard and, as the control, a bare Streamlit page.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))

from dashboard import transport  # noqa: E402

SYS_PIDFD_GETFD = 438  # x86_64 and aarch64 alike (the generic syscall table)


def nodelay_of(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def _pair(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return client, accepted


def test_the_open_connection_and_every_later_one_send_without_delay():
    with socket.socket(socket.AF_INET) as listener:  # as Streamlit binds it: protocol number 0
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client, before = _pair(listener)
        with client, before:
            assert before.proto == 0 and not nodelay_of(before), "the bug this module works around"
            transport.send_without_delay.cache_clear()
            try:
                assert transport.send_without_delay() >= 2  # at least the listener and the open connection
            finally:
                transport.send_without_delay.cache_clear()
            assert nodelay_of(before)
            client2, after = _pair(listener)
            with client2, after:
                assert nodelay_of(after), "Linux copies TCP_NODELAY from the listener"


def test_other_sockets_are_left_alone():
    a, b = socket.socketpair()  # AF_UNIX: no TCP options to set
    with a, b, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert not transport._set_nodelay(a.fileno())
        assert not transport._set_nodelay(udp.fileno())
        a.sendall(b"x")
        assert b.recv(1) == b"x"  # the owner's descriptor still works after the duplicate was closed


def test_a_closed_descriptor_is_skipped():
    s = socket.socket()
    fd = s.fileno()
    s.close()
    assert not transport._set_nodelay(fd)


def test_a_descriptor_that_is_no_socket_leaves_no_duplicate_open(tmp_path):
    with open(tmp_path / "f", "w") as f:
        before = len(os.listdir("/proc/self/fd"))
        assert not transport._set_nodelay(f.fileno())
        assert len(os.listdir("/proc/self/fd")) == before


def _server_tcp_nodelay(pid: int) -> list[bool]:
    """TCP_NODELAY of every IPv4/IPv6 stream socket of process ``pid`` (its listener and connections)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    out = []
    try:
        for entry in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if not os.readlink(f"/proc/{pid}/fd/{entry}").startswith("socket:"):
                    continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(entry), 0)
            if fd < 0:
                err = ctypes.get_errno()
                if err in (1, 38):  # EPERM (no ptrace rights), ENOSYS (kernel before 5.6)
                    pytest.skip(f"pidfd_getfd is not available here: {os.strerror(err)}")
                continue
            with socket.socket(fileno=fd) as s:
                if s.family in (socket.AF_INET, socket.AF_INET6) and s.type == socket.SOCK_STREAM:
                    out.append(nodelay_of(s))
    finally:
        os.close(pidfd)
    return out


def _open_a_session(url: str) -> None:
    from websockets.sync.client import connect

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_capacity import _one_rerun, _rerun_request
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    with connect(ws_url, subprotocols=["streamlit"], additional_headers={"Origin": url}, open_timeout=60) as ws:
        _, error, _ = _one_rerun(ws, _rerun_request("", url), ForwardMsg)
        assert error is None, error


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads another process's sockets through /proc")
def test_the_dashboard_server_sends_without_delay_and_a_bare_page_does_not():
    import harness as H

    with H.StreamlitServer() as app, H.StreamlitServer(script="bench/bare_slider.py") as bare:
        _open_a_session(app.url)
        _open_a_session(bare.url)
        ours, theirs = _server_tcp_nodelay(app.proc.pid), _server_tcp_nodelay(bare.proc.pid)
    assert ours and all(ours), f"the dashboard's TCP sockets, TCP_NODELAY each: {ours}"
    assert theirs and not any(theirs), (
        f"a bare Streamlit server's sockets, TCP_NODELAY each: {theirs}; if Streamlit now sets it itself, "
        "dashboard/transport.py can go"
    )
