"""deploy/replicas.py without servers: the nginx configuration it writes is valid for Debian's nginx
and says what the serving rules need (the running cluster is tested in tests/browser/test_browser_replicas.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
import replicas as R  # noqa: E402


def test_the_body_limit_is_streamlits_upload_limit_plus_the_multipart_allowance():
    assert R.max_upload_mb() == 50  # .streamlit/config.toml, = bptt_core.files.model_io.MAX_UPLOAD_BYTES
    assert R.Replicas().body_mb() == 50 + R.MULTIPART_ALLOWANCE_MB


def test_config_is_valid_nginx_and_holds_the_serving_rules(tmp_path):
    if not os.access(R.NGINX, os.X_OK):
        pytest.skip(f"{R.NGINX} not installed (bash scripts/setup.sh --test installs it)")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "tmp" / sub).mkdir(parents=True)
    text = R.nginx_config(tmp_path, "127.0.0.1", 8999, [9001, 9002, 9003], 51)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    check = subprocess.run(
        [R.NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert "hash $bptt_route consistent;" in text and "ip_hash" not in text
    assert all(f"server 127.0.0.1:{p} " in text for p in (9001, 9002, 9003))
    assert "proxy_set_header Upgrade $http_upgrade;" in text and "client_max_body_size 51m;" in text
    assert "/var/" not in text and "/etc/" not in text  # everything in the run folder


def test_zero_replicas_is_refused():
    with pytest.raises(ValueError, match="replicas"):
        R.Replicas(replicas=0).start()
    with pytest.raises(SystemExit):
        R.main(["--replicas", "0"])


@pytest.mark.slow
def test_the_script_serves_until_sigterm_then_leaves_no_process(tmp_path):
    """`python deploy/replicas.py` as an operator runs it: it serves through nginx, writes its files to
    the run folder, and SIGTERM to its process id stops nginx and the replica with it."""
    import re
    import signal
    import urllib.request

    if not os.access(R.NGINX, os.X_OK):
        pytest.skip(f"{R.NGINX} not installed (bash scripts/setup.sh --test installs it)")
    cmd = [
        sys.executable,
        str(ROOT / "deploy" / "replicas.py"),
        "--replicas",
        "1",
        "--port",
        "0",
        "--run-dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()  # "serving http://127.0.0.1:PORT ..." once everything is healthy
        url = re.match(r"serving (http://127\.0\.0\.1:\d+) ", line)
        assert url, f"unexpected first line: {line!r}"
        with urllib.request.urlopen(url.group(1) + "/_stcore/health", timeout=30) as r:
            assert r.read() == b"ok" and r.headers["X-Replica"].startswith("127.0.0.1:")
        pids = [int((tmp_path / f).read_text()) for f in ("nginx.pid", "replica-0.pid")]
        assert int((tmp_path / "serve.pid").read_text()) == proc.pid
        assert {"nginx.conf", "nginx-access.log", "nginx-error.log", "replica-0.log"} <= {
            p.name for p in tmp_path.iterdir()
        }
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        left = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        assert not left, f"nginx/replica still running after the script stopped: {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
