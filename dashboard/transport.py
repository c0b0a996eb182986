"""Every websocket message sent at once: Nagle's algorithm off on the server's TCP sockets.

Streamlit 1.67 serves through uvicorn from a listening socket it binds itself, made with
``socket.socket(family)``, whose protocol number is 0. asyncio turns Nagle's algorithm off only on a
socket whose protocol number says TCP (``asyncio.base_events._set_nodelay`` checks
``sock.proto == IPPROTO_TCP``), and the sockets accepted from that listener carry 0 too, so every
connection keeps Nagle on. Nagle holds a small write back while an earlier one is unacknowledged,
and the browser's kernel delays its acknowledgement of a small segment by up to 40 ms (Linux's
delayed ACK): every rerun's first message (``new_session``) went out at once and all the others, the
page's elements and ``script_finished``, arrived 40 ms later, on every page and on a bare one-slider
page alike. Measured with one closed-loop websocket client through nginx (``python bench/bench_capacity.py
--page "" --clients 1 --seconds 8 --nginx-replicas 1``): an Overview rerun took 44 ms with Nagle on and
10 ms with it off (22.5 against 92.9 reruns a second). Chromium on loopback acknowledged every segment
at once (seen with tcpdump), so a local browser did not wait; a client that delays its
acknowledgements does.

Linux copies TCP_NODELAY from a listening socket to each socket it accepts, so setting it on the
listener fixes every later connection; the connections already open are set too. Where the process's
descriptors cannot be listed (no ``/proc/self/fd``), nothing is changed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from pathlib import Path

FDS = Path("/proc/self/fd")


@functools.cache
def send_without_delay() -> int:
    """Set TCP_NODELAY on every TCP socket this process holds (the server's listener among them),
    once per process. Returns how many were set."""
    if not FDS.is_dir():
        return 0
    return sum(_set_nodelay(fd) for fd in _socket_fds())


def _socket_fds() -> list[int]:
    fds = []
    for entry in os.listdir(FDS):
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(FDS / entry).startswith("socket:"):
                fds.append(int(entry))
    return fds


def _set_nodelay(fd: int) -> bool:
    """TCP_NODELAY on the socket behind ``fd``, through a duplicate of it (closing the duplicate
    leaves the owner's descriptor open; the option belongs to the socket both name)."""
    try:
        dup = os.dup(fd)
    except OSError:  # closed since it was listed
        return False
    try:
        s = socket.socket(fileno=dup)  # family, type and protocol read from the descriptor
    except OSError:  # not a socket any more: the duplicate is ours to close
        os.close(dup)
        return False
    with s:
        if s.family not in (socket.AF_INET, socket.AF_INET6) or s.type != socket.SOCK_STREAM:
            return False
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            return False
    return True
