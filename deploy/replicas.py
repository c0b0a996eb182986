"""Serve a class: N identical Streamlit replicas of the dashboard behind nginx, with sticky sessions.

One Streamlit process runs every session's script on one interpreter, so past a few dozen active
students it is the bottleneck. The standard way out is several identical processes behind a reverse
proxy. Streamlit keeps a session's state and its uploaded files in the memory of the process that
holds the session's websocket (``/_stcore/stream``); the upload itself is a separate HTTP request
(``PUT /_stcore/upload_file/<session id>/<file id>``) that must reach that same process, or it is
refused ("Invalid session_id ... without sticky sessions"). So every request of one browser must go
to one replica.

How the stickiness works (open-source nginx, no commercial ``sticky`` directive): the first response
to a browser sets a cookie ``bptt_replica`` holding nginx's random ``$request_id``; the upstream is
chosen by ``hash <that value> consistent``, for the first request (no cookie yet: its own request id,
the value the cookie then carries) and every later one (the cookie). Clients behind one address (a
school's NAT, or every test on 127.0.0.1) still spread over the replicas, which ``ip_hash`` would not
do. The cookie is a session cookie (gone when the browser closes); a value that is not 32 hex digits
is ignored and replaced. Streamlit's XSRF cookie needs no shared secret (the token is checked against
the cookie, not a server key), but the replicas share one ``server.cookieSecret`` anyway, so signed
cookies (``st.login``) stay valid whichever replica a browser lands on after a failover.

Websockets: ``Upgrade``/``Connection`` are passed through (a map keeps keep-alive for plain
requests), and the proxy's read/send timeouts are a day, so an idle student's socket is not cut after
nginx's default 60 s. ``client_max_body_size`` is Streamlit's ``server.maxUploadSize`` (read from
.streamlit/config.toml) plus the 1 MiB Streamlit itself allows for the multipart envelope.
Every response carries ``X-Replica`` (the replica's loopback address), and the access log records it
with the route cookie, so an operator can see where a browser landed.

Everything nginx and the replicas write (config, pid file, logs, temp files) is in one run folder
(a new temporary one unless ``--run-dir`` says otherwise): nginx runs unprivileged-style with ``-p``
and ``-c`` and ``daemon off``. Stopping is by process id: each replica is its own process group,
nginx's master is ours, and Ctrl-C / SIGTERM to this script stops them all.

    python deploy/replicas.py --replicas 4 --port 8080        # then open http://127.0.0.1:8080
    python deploy/replicas.py --replicas 4 --port 8080 --listen 0.0.0.0   # reachable by the class
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian's package installs it in /usr/sbin
ROUTE_COOKIE = "bptt_replica"
MULTIPART_ALLOWANCE_MB = 1  # Streamlit allows 1 MiB above maxUploadSize for the multipart envelope
DAY_S = 86_400


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback TCP ports nobody listens on right now (all held open while choosing)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def max_upload_mb(root: Path = ROOT) -> int:
    """Streamlit's ``server.maxUploadSize`` (MB) as the replicas will read it (200, Streamlit's default)."""
    path = root / ".streamlit" / "config.toml"
    conf = tomllib.loads(path.read_text()) if path.exists() else {}
    return int(conf.get("server", {}).get("maxUploadSize", 200))


def nginx_config(run_dir: Path, listen: str, port: int, replica_ports: list[int], body_mb: int) -> str:
    """The whole nginx.conf: everything it writes stays under ``run_dir``."""
    assert replica_ports, "at least one replica"
    # As root, nginx would hand its workers to "nobody", who cannot write the run folder's temp
    # paths (request bodies over 16 KiB, i.e. every upload, are spooled there): keep our own user.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in replica_ports)
    tmp = run_dir / "tmp"
    return f"""# Written by deploy/replicas.py; see its docstring for why each setting is what it is.
{user}worker_processes auto;
pid {run_dir / "nginx.pid"};
error_log {run_dir / "nginx-error.log"} warn;
daemon off;

events {{
    worker_connections 4096;
}}

http {{
    log_format replica '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                       'replica=$upstream_addr route=$bptt_route rt=$request_time';
    access_log {run_dir / "nginx-access.log"} replica;
    client_body_temp_path {tmp / "body"};
    proxy_temp_path {tmp / "proxy"};
    fastcgi_temp_path {tmp / "fastcgi"};
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};

    # Websocket upgrade when asked for; otherwise an empty Connection header keeps upstream keep-alive.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    # Sticky sessions: the route is the cookie when it holds one of our values, else this request's id,
    # which the response then sets as the cookie.
    map $cookie_{ROUTE_COOKIE} $bptt_route {{
        "~^[0-9a-f]{{32}}$" $cookie_{ROUTE_COOKIE};
        default $request_id;
    }}
    map $cookie_{ROUTE_COOKIE} $bptt_set_cookie {{
        "~^[0-9a-f]{{32}}$" "";
        default "{ROUTE_COOKIE}=$request_id; Path=/; HttpOnly; SameSite=Lax";
    }}

    upstream streamlit_replicas {{
        hash $bptt_route consistent;
{servers}
        keepalive 32;
    }}

    server {{
        listen {listen}:{port};
        client_max_body_size {body_mb}m;

        location / {{
            proxy_pass http://streamlit_replicas;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout {DAY_S}s;
            proxy_send_timeout {DAY_S}s;
            add_header Set-Cookie $bptt_set_cookie always;
            add_header X-Replica $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Replicas:
    """N Streamlit replicas and nginx in front of them; a context manager. ``url`` is nginx's."""

    replicas: int = 2
    port: int = 0  # nginx's port; 0 picks a free one
    listen: str = "127.0.0.1"
    run_dir: Path | None = None  # None: a new temporary folder
    script: str = "app.py"
    startup_timeout: float = 120.0
    replica_ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)  # the replicas
    nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.listen in ("0.0.0.0", "127.0.0.1") else self.listen
        return f"http://{host}:{self.port}"

    def replica_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.replica_ports]

    def start(self) -> Replicas:
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")
        if not os.access(NGINX, os.X_OK):
            raise FileNotFoundError(f"{NGINX} not found: install Debian's nginx (bash scripts/setup.sh --test does)")
        self.run_dir = Path(self.run_dir or tempfile.mkdtemp(prefix="bptt-serve-"))
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.run_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        ports = [p for p in free_ports(self.replicas + 2) if p != self.port][: self.replicas + 1]
        self.port = self.port or ports.pop()
        try:
            self._start_replicas(ports[: self.replicas])
            self._start_nginx()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_replicas(self, ports: list[int]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_hex(32))  # one secret for all
        for i, port in enumerate(ports):
            cmd = [
                sys.executable, "-m", "streamlit", "run", self.script,
                "--server.headless", "true",
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ]  # fmt: skip
            with open(self.run_dir / f"replica-{i}.log", "wb") as log:
                proc = subprocess.Popen(
                    cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            (self.run_dir / f"replica-{i}.pid").write_text(f"{proc.pid}\n")  # also its process group id
            self.replica_ports.append(port)
            self.procs.append(proc)

    def _start_nginx(self) -> None:
        conf = self.run_dir / "nginx.conf"
        conf.write_text(nginx_config(self.run_dir, self.listen, self.port, self.replica_ports, self.body_mb()))
        base = [NGINX, "-p", str(self.run_dir), "-c", str(conf), "-e", str(self.run_dir / "nginx-error.log")]
        check = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {conf}:\n{check.stderr}")
        with open(self.run_dir / "nginx-stderr.log", "wb") as log:
            self.nginx = subprocess.Popen(base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def body_mb(self) -> int:
        return max_upload_mb(ROOT) + MULTIPART_ALLOWANCE_MB

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = [*self.replica_urls(), self.url]  # nginx last: its health is some replica's
        while pending:
            for i, proc in enumerate([*self.procs, self.nginx]):
                if proc.poll() is not None:
                    name = f"replica {i}" if i < len(self.procs) else "nginx"
                    raise RuntimeError(f"{name} exited with {proc.returncode}; logs in {self.run_dir}")
            url = pending[0]
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        pending.pop(0)
                        continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not healthy after {self.startup_timeout:.0f} s; logs in {self.run_dir}")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """Process ids of nginx's master and of every replica (each the leader of its own group)."""
        return [p.pid for p in [*self.procs, self.nginx] if p is not None]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx (graceful quit), then every replica, each by its process group id."""
        if self.nginx is not None:
            _stop_group(self.nginx, signal.SIGQUIT, timeout)
        for proc in self.procs:
            _stop_group(proc, signal.SIGTERM, timeout)

    def __enter__(self) -> Replicas:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop_group(proc: subprocess.Popen, sig: int, timeout: float) -> None:
    """Signal the process group led by ``proc`` (started with start_new_session), then SIGKILL it if needed."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):  # children left in the group (workers, spawned helpers)
        os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="N Streamlit replicas of the dashboard behind nginx (sticky sessions).")
    ap.add_argument("--replicas", type=int, default=max(1, os.cpu_count() or 1), help="default: one per core")
    ap.add_argument("--port", type=int, default=8080, help="nginx's port (0: a free one)")
    ap.add_argument("--listen", default="127.0.0.1", help="nginx's address (0.0.0.0 to serve the network)")
    ap.add_argument("--run-dir", type=Path, default=None, help="config, pid and log files (default: a temp folder)")
    args = ap.parse_args(argv)
    if args.replicas < 1:
        ap.error(f"--replicas must be >= 1, got {args.replicas}")
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Replicas(replicas=args.replicas, port=args.port, listen=args.listen, run_dir=args.run_dir) as rs:
        (rs.run_dir / "serve.pid").write_text(f"{os.getpid()}\n")
        print(f"serving {rs.url} ({args.replicas} replicas on ports {rs.replica_ports}); files in {rs.run_dir}")
        print(f"stop: Ctrl-C or kill {os.getpid()}", flush=True)
        while not stop["now"]:
            if any(p.poll() is not None for p in [*rs.procs, rs.nginx]):
                print(f"a process exited; stopping (logs in {rs.run_dir})", file=sys.stderr)
                return 1
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
