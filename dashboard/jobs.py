"""Background jobs for heavy work (training, over-budget analyses), off the dashboard's rerun path.

A :class:`JobRunner` keeps one worker thread per core and a bounded queue. Jobs are keyed by their
settings: a finished job's result is kept (least recently used dropped) and handed to the next
submit of the same key, and a key submitted while its job is queued or running joins that job.
Every job has owner tokens (one per dashboard session); :meth:`JobRunner.cancel_owner` withdraws a
session from all its jobs and cancels those nobody else is waiting for, so work of a session that
leaves stops. A job function is called as ``fn(progress, cancelled)``: ``progress(fraction,
message)`` reports how far it is (the ETA comes from the measured time per fraction so far), and
``cancelled()`` is True once the job is cancelled; the training loops (:mod:`bptt_core.learning.training`)
check it between steps and raise :class:`Cancelled`, so a cancel takes effect within one training step
(the cost budget, :mod:`bptt_core.analyses.cost`, keeps a step well under a second). Library loops that are not
training (the gradient-flow engine's steps) call :func:`bptt_core.progress.checkpoint`: a job runs
inside :func:`bptt_core.progress.reporting`, so those checkpoints report to it and raise
:class:`~bptt_core.progress.Cancelled` once it is cancelled.

Fairness: the queue hands a free worker the oldest job of the owner with the fewest running jobs,
and each owner may have at most ``max_per_owner`` jobs waiting, so one tab cannot fill the queue.
Light work never enters this queue: :meth:`JobRunner.light_slot` is a separate pool of slots (one
per core) that heavy jobs never hold, so a visitor at the default settings is served within
seconds however many heavy jobs wait (docs/serving.md).

Results are the function's own return value, computed in a worker thread by the same code a
synchronous call runs, so they are equal bit for bit (tests/dashboard/test_jobs.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

from bptt_core.progress import Cancelled, reporting

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)

JobFn = Callable[[Callable[[float, str], None], Callable[[], bool]], object]


class QueueFull(RuntimeError):
    """The runner's queue (or the owner's share of it) is full: try again when a job has finished."""


def new_owner() -> str:
    """A fresh owner token (one per dashboard session)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a job, for a progress bar."""

    key: Hashable
    state: str  # queued | running | done | failed | cancelled
    fraction: float  # 0..1
    message: str
    elapsed_s: float  # since the job started running (0 while queued)
    eta_s: float | None  # seconds left: measured time per fraction so far, else the cost estimate
    position: int  # jobs ahead of it in the queue (0 once running)
    error: str = ""  # the message of a failed job


class Job:
    """One unit of background work. Read it through :meth:`status`, :meth:`wait` and :attr:`result`."""

    def __init__(self, key: Hashable, fn: JobFn, estimate_s: float | None = None):
        self.key = key
        self.fn = fn
        self.estimate_s = estimate_s
        self.owners: set[str] = set()
        self.state = QUEUED
        self.fraction = 0.0
        self.message = "waiting for a free worker"
        self.result = None
        self.error: BaseException | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._runner: JobRunner | None = None

    # -- called from the job's own thread ------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        self.fraction = min(1.0, max(self.fraction, float(fraction)))
        if message:
            self.message = message

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- read by anyone ----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (done, failed or cancelled); False on timeout."""
        return self._done.wait(timeout)

    def eta(self) -> float | None:
        if self.state != RUNNING or self.started is None:
            return self.estimate_s if self.state == QUEUED else None
        elapsed = time.perf_counter() - self.started
        if self.fraction > 0:
            return elapsed * (1 - self.fraction) / self.fraction  # measured: time per fraction so far
        return None if self.estimate_s is None else max(0.0, self.estimate_s - elapsed)

    def status(self) -> JobStatus:
        elapsed = 0.0
        if self.started is not None:
            elapsed = (self.finished or time.perf_counter()) - self.started
        position = self._runner.position(self) if self._runner is not None and self.state == QUEUED else 0
        err = "" if self.error is None else str(self.error)
        return JobStatus(self.key, self.state, self.fraction, self.message, elapsed, self.eta(), position, err)


MAX_RESULT_BYTES = 512 * 2**20  # what the finished results may hold together (the newest is always kept)


def result_bytes(obj, _seen: set | None = None, _depth: int = 0) -> int:
    """About how many bytes of array data a job's result holds: numpy arrays, tensors and DataFrames,
    found through dicts, lists, tuples, dataclasses and modules' parameters (each object counted once)."""
    seen = set() if _seen is None else _seen
    if obj is None or id(obj) in seen or _depth > 8 or isinstance(obj, (str, bytes, int, float, bool)):
        return len(obj) if isinstance(obj, bytes) else 0
    seen.add(id(obj))
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):  # a torch tensor (no torch import here)
        return int(obj.element_size() * obj.numel())
    if hasattr(obj, "nbytes") and hasattr(obj, "dtype"):  # a numpy array
        return int(obj.nbytes)
    if hasattr(obj, "memory_usage") and hasattr(obj, "columns"):  # a DataFrame
        return int(obj.memory_usage(index=False).sum())
    if isinstance(obj, dict):
        items = obj.values()
    elif isinstance(obj, (list, tuple, set)):
        items = obj
    elif callable(getattr(obj, "parameters", None)) and hasattr(obj, "state_dict"):  # a torch module
        items = list(obj.state_dict().values())
    elif hasattr(obj, "__dataclass_fields__"):
        items = [getattr(obj, f) for f in obj.__dataclass_fields__]
    else:
        return 0
    return sum(result_bytes(v, seen, _depth + 1) for v in items)


class JobRunner:
    """Worker threads (one per core by default) over a bounded, owner-fair queue, with a result cache."""

    def __init__(
        self,
        workers: int | None = None,
        max_queued: int = 32,
        max_per_owner: int = 2,
        max_results: int = 32,
        light_slots: int | None = None,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ):
        self.workers = int(workers or os.cpu_count() or 2)
        self.max_queued = int(max_queued)
        self.max_per_owner = int(max_per_owner)
        self.max_results = int(max_results)
        self.max_result_bytes = int(max_result_bytes)
        self._result_bytes: dict[Hashable, int] = {}  # the kept results' sizes (result_bytes)
        self._cv = threading.Condition()
        self._queue: list[Job] = []  # waiting, oldest first
        self._active: dict[Hashable, Job] = {}  # queued or running, by key
        self._results: OrderedDict[Hashable, Job] = OrderedDict()  # done or failed, least recent first
        self._running_by_owner: dict[str, int] = {}
        self._closed = False
        self._light = threading.BoundedSemaphore(int(light_slots or self.workers))
        self._light_held = threading.local()
        self._threads = [
            threading.Thread(target=self._work, name=f"bptt-job-{i}", daemon=True) for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    # -- submitting and finding ----------------------------------------------------------------
    def submit(self, key: Hashable, fn: JobFn, owner: str | None = None, estimate_s: float | None = None) -> Job:
        """The job for ``key``: a finished one from the cache, the one already queued or running (now
        also owned by ``owner``), or a new one queued. Raises QueueFull when there is no room."""
        with self._cv:
            if self._closed:
                raise RuntimeError("the job runner has been shut down")
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            job = self._active.get(key)
            if job is not None and not job.cancelled():
                if owner is not None:
                    job.owners.add(owner)
                return job
            if len(self._queue) >= self.max_queued:
                raise QueueFull(
                    f"the server's queue of heavy computations is full ({self.max_queued} waiting); "
                    "try again in a minute, or lower the settings so the work is light"
                )
            if owner is not None and sum(owner in j.owners for j in self._queue) >= self.max_per_owner:
                raise QueueFull(
                    f"this session already has {self.max_per_owner} heavy computations waiting; "
                    "cancel one or wait for it to finish"
                )
            job = Job(key, fn, estimate_s)
            job._runner = self
            if owner is not None:
                job.owners.add(owner)
            self._active[key] = job
            self._queue.append(job)
            self._cv.notify()
            return job

    def put(self, key: Hashable, result) -> Job:
        """Keep a result computed elsewhere (light work done inline) as the finished job of ``key``."""
        job = Job(key, lambda p, c: result)
        job.result = result
        with self._cv:
            job.started = time.perf_counter()
            self._finish_locked(job, DONE)
        return job

    def forget_results(self) -> None:
        """Drop every kept result (queued and running jobs go on): what clearing Streamlit's caches does
        for the numbers kept here."""
        with self._cv:
            self._results.clear()
            self._result_bytes.clear()

    def get(self, key: Hashable) -> Job | None:
        """The job for ``key`` (queued, running or finished), or None."""
        with self._cv:
            return self._active.get(key) or self._results.get(key)

    def result(self, key: Hashable):
        """The cached result of a finished job, or None (no job, or not done)."""
        job = self.get(key)
        return job.result if job is not None and job.state == DONE else None

    def position(self, job: Job) -> int:
        with self._cv:
            try:
                return self._queue.index(job)
            except ValueError:
                return 0

    # -- cancelling ----------------------------------------------------------------------------
    def cancel(self, key: Hashable, owner: str | None = None) -> bool:
        """Withdraw ``owner`` from the job (None: everyone); cancel it when no owner is left.
        True if the job was cancelled."""
        with self._cv:
            job = self._active.get(key)
            if job is None:
                return False
            if owner is not None:
                job.owners.discard(owner)
                if job.owners:
                    return False
            self._cancel_locked(job)
            return True

    def cancel_owner(self, owner: str) -> int:
        """Withdraw ``owner`` (a session that left) from every job; returns how many were cancelled."""
        n = 0
        with self._cv:
            for job in list(self._active.values()):
                if owner in job.owners:
                    job.owners.discard(owner)
                    if not job.owners:
                        self._cancel_locked(job)
                        n += 1
        return n

    def _cancel_locked(self, job: Job) -> None:
        job._cancel.set()
        if job.state == QUEUED:
            self._queue.remove(job)
            self._finish_locked(job, CANCELLED)
        # a running job sees cancelled() at its next check and its worker finishes it

    # -- state -----------------------------------------------------------------------------------
    def running(self) -> int:
        with self._cv:
            return sum(j.state == RUNNING for j in self._active.values())

    def queued(self) -> int:
        with self._cv:
            return len(self._queue)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the workers."""
        with self._cv:
            self._closed = True
            for job in list(self._active.values()):
                self._cancel_locked(job)
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    # -- light work --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def light_slot(self) -> Iterator[None]:
        """A slot for light work, in the caller's thread: a pool of its own (one per core), which heavy
        jobs never hold. Re-entrant per thread (a nested call takes no second slot)."""
        depth = getattr(self._light_held, "depth", 0)
        if depth == 0:
            self._light.acquire()
        self._light_held.depth = depth + 1
        try:
            yield
        finally:
            self._light_held.depth = depth
            if depth == 0:
                self._light.release()

    # -- the workers -------------------------------------------------------------------------------
    def _next_locked(self) -> Job:
        """The oldest job of the owner with the fewest running jobs (owner-fair, FIFO within)."""

        def load(j: Job) -> int:
            return min((self._running_by_owner.get(o, 0) for o in j.owners), default=0)

        return min(self._queue, key=load)  # min keeps the first (oldest) of equal loads

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                job = self._next_locked()
                self._queue.remove(job)
                job.state = RUNNING
                job.started = time.perf_counter()
                job.message = "started"
                owners = tuple(job.owners)
                for o in owners:
                    self._running_by_owner[o] = self._running_by_owner.get(o, 0) + 1
            state = DONE
            try:
                if job.cancelled():
                    raise Cancelled("cancelled before it started")
                with reporting(job.progress, job.cancelled):  # the numerics' checkpoints report to this job
                    job.result = job.fn(job.progress, job.cancelled)
            except Cancelled:
                state = CANCELLED
            except Exception as e:  # noqa: BLE001 - a failed job reports its error; the worker lives on
                job.error = e
                state = FAILED
            with self._cv:
                for o in owners:
                    left = self._running_by_owner.get(o, 1) - 1
                    if left:
                        self._running_by_owner[o] = left
                    else:
                        self._running_by_owner.pop(o, None)
                if state == DONE and job.cancelled():
                    state = CANCELLED  # cancelled after its last check: nobody wants the result
                self._finish_locked(job, state)

    def _finish_locked(self, job: Job, state: str) -> None:
        job.state = state
        job.finished = time.perf_counter()
        if state == DONE:
            job.fraction = 1.0
            job.message = "done"
        elif state == CANCELLED:
            job.result = None
            job.message = "cancelled"
        if self._active.get(job.key) is job:
            del self._active[job.key]
        if state in (DONE, FAILED):
            self._results[job.key] = job
            self._results.move_to_end(job.key)
            self._result_bytes[job.key] = result_bytes(job.result)
            # bounded by count and by bytes (a training result keeps its weight snapshots); the newest stays
            while len(self._results) > 1 and (
                len(self._results) > self.max_results or sum(self._result_bytes.values()) > self.max_result_bytes
            ):
                old, _ = self._results.popitem(last=False)
                self._result_bytes.pop(old, None)
        job._done.set()


_default: JobRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> JobRunner:
    """The process-wide runner the dashboard shares (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = JobRunner()
        return _default
