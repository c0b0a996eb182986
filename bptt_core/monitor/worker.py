"""The monitor's background worker: a separate Python process at the lowest CPU priority that computes
the heavy diagnostics of logged steps (docs/design.md, "monitor").

The exact T x T gradient-flow matrix of one sequence costs about as much as 15-20 training steps of
the README's example; at ``every=50`` that is +30-40 % in the loop. In this process it runs beside
training instead (``os.nice(19)``: the training loop's threads always go first, the diagnostics take
the CPU time they leave), and the loop pays only for copying the weights. A process, not a thread:
its Python work never holds the training loop's GIL, and its torch threads are its own.

Protocol: pickled jobs on stdin, pickled results on stdout, one at a time, in order. The worker is
started with ``python -m bptt_core.monitor.worker THREADS`` (never through multiprocessing's spawn,
which would re-run the user's training script as ``__main__`` in the child).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

from .diagnostics import heavy_diagnostics

NICE = 19  # the lowest priority: training first
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class Unreadable(Exception):
    """The worker could not unpickle a job: the monitor computes in its own thread instead."""


class WorkerProcess:
    """The parent's handle: ``run(job)`` sends one job and waits for its result (call it from one
    thread at a time: the monitor's collector thread)."""

    def __init__(self, threads: int):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bptt_core.monitor.worker", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        try:  # lowest priority from its first instruction on (a child of ours: permitted without privileges)
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, NICE)
        except OSError:  # not permitted here: still correct, only less polite
            pass
        self._lock = threading.Lock()
        self.failure: str | None = None  # why the worker stopped, once it has

    @property
    def alive(self) -> bool:
        return self.failure is None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def run(self, job: dict):
        """The worker's answer to ``job`` (heavy_diagnostics's return value); what the job raised is
        raised here. Unreadable: the worker could not unpickle the job (a module whose class it cannot
        import, as one defined in the training script). OSError / EOFError: the worker is gone."""
        try:
            data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # a module that cannot be pickled here (a class defined inside a function)
            raise Unreadable(f"{type(e).__name__}: {e}") from e
        with self._lock:
            try:
                _send(self._proc.stdin, data)
                kind, value = pickle.loads(_receive(self._proc.stdout))
            except (OSError, EOFError) as e:
                self.failure = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                raise
        if kind == "raised":
            raise value
        if kind == "unreadable":
            raise Unreadable(value)
        return value

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()  # end of input: the worker returns
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        for f in (self._proc.stdin, self._proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import torch

    torch.set_num_threads(max(1, int(argv[0]) if argv else 1))
    jobs, results = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the results' stream
    while True:
        try:
            data = _receive(jobs)
        except EOFError:
            return 0
        try:
            job = pickle.loads(data)
        except Exception as e:
            answer = ("unreadable", f"{type(e).__name__}: {e}")
        else:
            try:
                answer = ("done", heavy_diagnostics(**job))
            except Exception as e:  # strict mode: the parent raises it
                answer = ("raised", e)
        _send(results, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))


def _send(stream, data: bytes) -> None:
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream) -> bytes:
    """One length-prefixed frame; EOFError at the end of the stream (or a cut frame)."""
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the stream ended")
    n = int.from_bytes(head, "little")
    data = stream.read(n)
    if len(data) < n:
        raise EOFError("the stream ended inside a frame")
    return data


if __name__ == "__main__":
    raise SystemExit(main())
