"""Past one server: two replicas behind nginx (deploy/replicas.py) on loopback, driven through nginx.

Each browser session lands on one replica and stays there: every HTTP response and the websocket's
handshake carry nginx's ``X-Replica`` header, and all of a session's name the same replica. Two
sessions are placed on different replicas, each uploads its own model, and each uses it on every
page that analyses an upload, with no exception box and the page saying whose model it analyses.
An upload that reached the other replica would be refused there (Streamlit knows the session only
where its websocket is), so the uploads working is itself the proof the routing is sticky.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import harness as H
import pytest
import torch
from torch import nn

from bptt_core.files.model_io import model_bytes

sys.path.insert(0, str(H.ROOT / "deploy"))
import replicas as R  # noqa: E402

pytestmark = pytest.mark.slow

# The pages that analyse an uploaded model: (sidebar link text, charts drawn at least).
UPLOAD_PAGES = [("Gradient flow", 3), ("Spectrum", 2), ("Truncated BPTT", 1), ("Clipping", 1)]
PLACE_TRIES = 24  # new sessions tried until one lands on the other replica (each 1/2 at random)
PAGE_TIMEOUT = 180.0  # seconds: Clipping trains the uploaded model's twins on a shared machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not os.access(R.NGINX, os.X_OK):
        pytest.skip(f"{R.NGINX} not installed (bash scripts/setup.sh --test installs it)")
    if not os.access(H.CHROMIUM, os.X_OK):
        pytest.skip(f"{H.CHROMIUM} not installed (bash scripts/setup.sh --test installs it)")
    rs = R.Replicas(replicas=2, run_dir=tmp_path_factory.mktemp("serve"))
    with rs:
        yield rs
    gone = [pid for pid in rs.pids() if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    assert not gone, f"processes left running after stop: {gone}"
    for i in range(rs.replicas):
        log = (rs.run_dir / f"replica-{i}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"replica {i} logged a traceback:\n{log[-4000:]}"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


class Session:
    """One browser context through nginx, with every replica that answered it recorded."""

    def __init__(self, browser, base: str):
        self.ctx = browser.new_context(viewport=H.VIEWPORT)
        self.ctx.set_default_timeout(60_000)
        self.page = self.ctx.new_page()
        self.page.watcher = H.RerunWatcher(self.page)
        self.http: list[tuple[str, str | None]] = []  # (url, X-Replica) of every response from nginx
        self.sockets: list[str | None] = []  # X-Replica of every websocket handshake
        self.base = base
        self.page.on("response", self._on_response)
        cdp = self.ctx.new_cdp_session(self.page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketHandshakeResponseReceived", self._on_handshake)
        # The route cookie is set by the first response: ask once, before the page, to learn the replica.
        self.replica = self.ctx.request.get(base + "/_stcore/health").headers["x-replica"]

    def _on_response(self, response) -> None:
        if response.url.startswith(self.base):
            self.http.append((response.url, response.headers.get("x-replica")))

    def _on_handshake(self, event: dict) -> None:
        headers = {k.lower(): v for k, v in event["response"]["headers"].items()}
        self.sockets.append(headers.get("x-replica"))

    def replicas_seen(self) -> set[str | None]:
        return {rep for _, rep in self.http} | set(self.sockets)

    def close(self) -> None:
        self.ctx.close()


def _sessions_on_two_replicas(browser, cluster) -> tuple[Session, Session]:
    a = Session(browser, cluster.url)
    for _ in range(PLACE_TRIES):
        b = Session(browser, cluster.url)
        if b.replica != a.replica:
            return a, b
        b.close()
    a.close()
    raise AssertionError(f"{PLACE_TRIES} new sessions all landed on {a.replica}: the routing does not spread")


def _model_file(tmp_path: Path, name: str, module: nn.Module, hidden: int) -> Path:
    torch.manual_seed(0)
    path = tmp_path / name
    path.write_bytes(model_bytes(module, name, nn.Linear(hidden, 1)))
    return path


def _upload_and_tour(s: Session, base: str, path: Path) -> dict[str, str]:
    """Upload ``path`` in the sidebar, then visit every upload page through the sidebar's links
    (one websocket, one session). Returns each page's text that names the uploaded model."""
    page = s.page
    H.open_page(page, base + "/gradient-flow", page.watcher, charts=UPLOAD_PAGES[0][1], timeout=PAGE_TIMEOUT)
    page.get_by_text("Your own model").click()
    page.locator('input[type="file"]').first.set_input_files(str(path))
    said = f"Model: uploaded {path.name}"
    page.get_by_text(said).first.wait_for(timeout=PAGE_TIMEOUT * 1000)
    seen = {}
    for link, charts in UPLOAD_PAGES:
        if link != UPLOAD_PAGES[0][0]:
            before = page.watcher.finished
            page.locator('[data-testid="stSidebarNav"] a').filter(has_text=link).first.click()
            H.wait_idle(page, page.watcher, before, timeout=PAGE_TIMEOUT)
        page.get_by_text(said).first.wait_for(timeout=PAGE_TIMEOUT * 1000)
        H.wait_charts(page, charts, timeout=PAGE_TIMEOUT)
        assert H.problems(page) == {"exceptions": [], "errors": []}, f"{link}: {H.problems(page)}"
        seen[link] = page.get_by_text(said).first.inner_text()
    return seen


def test_routing_spreads_new_clients_and_keeps_each_on_its_replica(cluster):
    import urllib.request

    landed = set()
    for _ in range(PLACE_TRIES):  # no cookie: a new client each time
        with urllib.request.urlopen(cluster.url + "/_stcore/health", timeout=10) as r:
            landed.add(r.headers["X-Replica"])
            cookie = next(c for c in r.headers.get_all("Set-Cookie") if c.startswith(R.ROUTE_COOKIE + "="))
    assert landed == {f"127.0.0.1:{p}" for p in cluster.replica_ports}
    route = cookie.split(";")[0]
    req = urllib.request.Request(cluster.url + "/_stcore/health", headers={"Cookie": route})
    again = set()
    for _ in range(8):
        with urllib.request.urlopen(req, timeout=10) as r:
            again.add(r.headers["X-Replica"])
            assert not any(c.startswith(R.ROUTE_COOKIE) for c in r.headers.get_all("Set-Cookie") or [])
    assert len(again) == 1, f"one cookie, several replicas: {again}"


def test_two_sessions_on_two_replicas_each_use_their_upload_on_every_page(cluster, chromium, tmp_path):
    a, b = _sessions_on_two_replicas(chromium, cluster)
    try:
        files = {
            a: _model_file(tmp_path, "class_gru.safetensors", nn.GRU(3, 16), 16),
            b: _model_file(tmp_path, "class_lstm.safetensors", nn.LSTM(2, 8), 8),
        }
        for s, path in files.items():
            seen = _upload_and_tour(s, cluster.url, path)
            assert set(seen) == {link for link, _ in UPLOAD_PAGES}
            H.screenshot(s.page, f"replicas-{path.stem}")
        for s in (a, b):
            uploads = [rep for url, rep in s.http if "/_stcore/upload_file/" in url]
            assert uploads, "no upload request went through nginx"
            assert s.sockets, "no websocket handshake seen"
            assert s.replicas_seen() == {s.replica}, f"one session, several replicas: {s.replicas_seen()}"
        assert a.replica != b.replica
    finally:
        a.close()
        b.close()


def _put(url: str, length: int, body: bytes | None, headers: dict | None = None):
    """PUT to ``url`` announcing ``length`` bytes; send ``body`` only if given. Returns (status, X-Replica)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.putrequest("PUT", u.path)
        for k, v in {"Content-Length": str(length), **(headers or {})}.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body is not None:
            conn.send(body)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("X-Replica")
    finally:
        conn.close()


def test_nginx_passes_uploads_up_to_streamlits_limit_and_refuses_larger(cluster):
    """An upload of exactly the largest file Streamlit accepts, in its multipart envelope, reaches a
    replica (which answers it: here 403, no XSRF token); a body past the envelope's allowance is
    refused by nginx itself (413, no replica)."""
    limit = R.max_upload_mb() * 2**20
    url = cluster.url + "/_stcore/upload_file/no-such-session/f1"
    boundary = "bpttboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.pt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + bytes(limit) + f"\r\n--{boundary}--\r\n".encode()
    status, replica = _put(url, len(body), body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert replica in {f"127.0.0.1:{p}" for p in cluster.replica_ports} and status != 413, (status, replica)
    too_big = (R.max_upload_mb() + R.MULTIPART_ALLOWANCE_MB) * 2**20 + 1
    assert _put(url, too_big, None) == (413, None)
