"""Server capacity without browsers: how many reruns a second one Streamlit replica sustains at the
default settings, and the same through nginx in front of two replicas (deploy/replicas.py).

Browsers would compete with the server for the same cores (bench_load.py's 30 Chromium sessions do:
its numbers are an upper bound). Here each simulated student is a light websocket client that
speaks Streamlit's own protocol (the server's protobufs, as tests/browser/harness.py decodes them):
it opens ``/_stcore/stream`` (through nginx after fetching its route cookie, like a browser), sends
the ``BackMsg`` a browser sends when it opens the page (a ``rerun_script`` with the page's name and
no widget changes, i.e. the defaults), and waits for ``script_finished`` before asking again (closed
loop: each client has at most one rerun in flight, as a student clicking does). The clients are
threads in this process; their CPU time is reported, so it is visible that they take little from
the server's cores.

Reported per setup: reruns per second over the measuring window, the time per rerun (request sent ->
``script_finished``; median and 95th percentile), the replicas' CPU seconds per rerun (what a rerun
costs the server, whatever else the machine is doing: 1 / that is the reruns a second one free core
sustains), the cores the replicas kept busy (one replica runs every session's script in one
interpreter, whose lock lets Python code use one core at a time), the client's CPU share, errors (an exception element in the page, a rerun that did not
finish successfully, a timeout; the goal is 0), and the machine's load average.

    python bench/bench_capacity.py                         # gradient-flow page, 8 clients, 15 s a setup
    python bench/bench_capacity.py --page spectrum --clients 16 --seconds 20

Bounded: --clients <= 64, --seconds <= 120, every wait has a timeout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "deploy")]

import replicas as R  # noqa: E402

RERUN_TIMEOUT = 120.0  # seconds for one rerun under load
MAX_CLIENTS = 64
MAX_SECONDS = 120.0


@dataclass
class Tally:
    """What one client saw during the measuring window."""

    times: list[float] = field(default_factory=list)  # request -> script_finished, seconds
    errors: list[str] = field(default_factory=list)
    replica: str = ""  # where nginx sent this client (X-Replica; empty when a replica is reached directly)
    charts: int = 0  # Plotly charts in the client's last rerun: the page really rendered


def _rerun_request(page: str, base: str) -> bytes:
    """The BackMsg a browser sends when it opens ``base/page``: run the page at its defaults."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.rerun_script.page_name = page
    msg.rerun_script.context_info.url = f"{base}/{page}"
    msg.rerun_script.context_info.timezone = "UTC"
    msg.rerun_script.context_info.locale = "en-US"
    msg.rerun_script.widget_states.SetInParent()
    return msg.SerializeToString()


def _first_request(base: str) -> tuple[str, str]:
    """Ask once, like a browser's first request. Returns the cookies to send on (nginx's route
    cookie among them) and the replica nginx chose ("" when a replica is asked directly)."""
    with urllib.request.urlopen(base + "/_stcore/health", timeout=30) as r:
        cookies = "; ".join(c.split(";")[0] for c in r.headers.get_all("Set-Cookie") or [])
        return cookies, r.headers.get("X-Replica") or ""


def _one_rerun(ws, request: bytes, ForwardMsg) -> tuple[float, str | None, int]:
    """Send one rerun request and read until it finished. Returns (seconds, error or None, charts sent)."""
    ws.send(request)
    t0 = time.perf_counter()
    error = None
    charts = 0
    deadline = t0 + RERUN_TIMEOUT
    while True:
        frame = ws.recv(timeout=max(0.01, deadline - time.perf_counter()))
        if isinstance(frame, str):
            continue
        msg = ForwardMsg()
        msg.ParseFromString(frame)
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element.WhichOneof("type")
            charts += element == "plotly_chart"
            if element == "exception":
                error = error or f"exception: {msg.delta.new_element.exception.message[:200]}"
        elif kind == "script_finished":
            status = msg.script_finished
            if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                continue  # the page asked for a rerun itself: its next run finishes this request
            if status not in (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
                error = error or f"script finished with status {status}"
            return time.perf_counter() - t0, error, charts


def client(base: str, page: str, ready: threading.Barrier, window: dict, tally: Tally) -> None:
    """One simulated student: connect, one warm-up rerun, then reruns until the window closes."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    ws_url = base.replace("http://", "ws://") + "/_stcore/stream"
    request = _rerun_request(page, base)
    try:
        cookies, tally.replica = _first_request(base)
        headers = {"Cookie": cookies, "Origin": base}
        with connect(
            ws_url, subprotocols=["streamlit"], additional_headers=headers, max_size=None, open_timeout=60
        ) as ws:
            _one_rerun(ws, request, ForwardMsg)  # the session's first run (imports, caches warm)
            ready.wait(timeout=RERUN_TIMEOUT)
            while time.perf_counter() < window["end"]:
                seconds, error, tally.charts = _one_rerun(ws, request, ForwardMsg)
                if time.perf_counter() <= window["end"]:  # count only reruns finished inside the window
                    tally.times.append(seconds)
                    if error:
                        tally.errors.append(error)
    except Exception as e:  # noqa: BLE001 - any failure of a client is an error in the table
        tally.errors.append(f"{type(e).__name__}: {e}")
        if not ready.broken:
            ready.abort()


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def measure(base: str, server_pids: list[int], page: str, clients: int, seconds: float) -> dict:
    """``clients`` closed-loop clients against ``base`` for ``seconds`` after every one has warmed up."""
    window = {"end": float("inf")}

    def start_window():
        window["t0"] = time.perf_counter()
        window["end"] = window["t0"] + seconds
        window["server_cpu0"] = _cpu_seconds(server_pids)
        window["client_cpu0"] = time.process_time()

    ready = threading.Barrier(clients, action=start_window)
    tallies = [Tally() for _ in range(clients)]
    threads = [threading.Thread(target=client, args=(base, page, ready, window, t), daemon=True) for t in tallies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 2 * RERUN_TIMEOUT + 60)
    elapsed = seconds if "t0" in window else float("nan")
    server_cpu = _cpu_seconds(server_pids) - window.get("server_cpu0", 0.0)
    client_cpu = time.process_time() - window.get("client_cpu0", 0.0)
    times = [x for t in tallies for x in t.times]
    errors = [e for t in tallies for e in t.errors]
    n = len(times)
    spread = sorted(Counter(t.replica for t in tallies).values(), reverse=True)
    return {
        "clients_per_replica": "+".join(map(str, spread)),
        "charts": min(t.charts for t in tallies),
        "reruns": n,
        "per_s": n / elapsed if n else 0.0,
        "median": statistics.median(times) if times else float("nan"),
        "p95": sorted(times)[max(0, round(0.95 * (n - 1)))] if times else float("nan"),
        "cpu_per_rerun": server_cpu / n if n else float("nan"),
        "server_cores": server_cpu / elapsed,
        "client_cpu_share": client_cpu / elapsed,
        "errors": errors,
        "load": os.getloadavg()[0],
    }


def setups(replicas_through_nginx: tuple[int, ...]) -> list[tuple[str, int, bool]]:
    """(label, replicas, through nginx): one replica reached directly first, the baseline."""
    rows = [("1 replica, direct", 1, False)]
    rows += [(f"{n} replica{'s' if n > 1 else ''} behind nginx", n, True) for n in replicas_through_nginx]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", default="gradient-flow", help="URL path of the page to rerun (default gradient-flow)")
    ap.add_argument("--clients", type=int, default=8, help=f"concurrent clients (<= {MAX_CLIENTS})")
    ap.add_argument("--seconds", type=float, default=15.0, help=f"measuring window per setup (<= {MAX_SECONDS:.0f})")
    ap.add_argument("--nginx-replicas", type=int, nargs="+", default=[2], help="replica counts behind nginx")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        ap.error(f"--clients must be in [1, {MAX_CLIENTS}]")
    if not 1 <= args.seconds <= MAX_SECONDS:
        ap.error(f"--seconds must be in [1, {MAX_SECONDS:.0f}]")
    if any(n < 1 or n > 8 for n in args.nginx_replicas):
        ap.error("--nginx-replicas must be in [1, 8]")
    print(f"page /{args.page}, {args.clients} clients, {args.seconds:.0f} s per setup, {os.cpu_count()} cores")
    header = (
        f"{'setup':<28} {'reruns':>6} {'reruns/s':>8} {'median s':>8} {'p95 s':>7} "
        f"{'server CPU s/rerun':>18} {'server cores':>12} {'client CPU':>10} {'errors':>6} {'clients/replica':>15} {'charts':>6} {'load':>5}"
    )
    print(header)
    failed = False
    for label, n, via_nginx in setups(tuple(args.nginx_replicas)):
        with tempfile.TemporaryDirectory(prefix="bptt-capacity-") as run_dir, R.Replicas(n, run_dir=run_dir) as rs:
            base = rs.url if via_nginx else rs.replica_urls()[0]
            pids = [p.pid for p in rs.procs]
            r = measure(base, pids, args.page, args.clients, args.seconds)
        if r["charts"] == 0:
            r["errors"].append(f"/{args.page} rendered no chart: not the page meant")
        failed |= bool(r["errors"])
        print(
            f"{label:<28} {r['reruns']:>6} {r['per_s']:>8.2f} {r['median']:>8.3f} {r['p95']:>7.3f} "
            f"{r['cpu_per_rerun']:>18.3f} {r['server_cores']:>12.2f} {r['client_cpu_share']:>9.0%} {len(r['errors']):>6} "
            f"{r['clients_per_replica']:>15} {r['charts']:>6} {r['load']:>5.1f}",
            flush=True,
        )
        for e in sorted(set(r["errors"]))[:5]:
            print(f"    error: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
