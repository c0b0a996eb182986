"""Heavy work in the background, shown in the page: progress with an estimate, a Cancel button, the
per-request budget, and the session's jobs cancelled when it leaves.

A page hands :func:`background` a key made of the settings the result depends on (never a view-only
control: changing the heatmap's run or the export format reruns the page, finds the same key and
reuses the result, so nothing retrains), a job function and its estimated :class:`~bptt_core.analyses.cost.Cost`.
The job runs in :func:`dashboard.jobs.default_runner`'s workers, off the rerun path; while it runs,
a fragment redraws only the progress bar every :data:`POLL_SECONDS` (``st.fragment(run_every=...)``),
so the rest of the page stays responsive, and reruns the whole page once the result is there.

Leaving: every session has an owner token, kept in a session-scoped ``st.cache_resource`` whose
``on_release`` hook cancels the session's jobs. Streamlit (1.67) clears a session's resource cache
when its browser disconnects and when the session is shut down (``AppSession.clear_session_caches``,
called from ``WebsocketSessionManager.disconnect_session`` and ``AppSession.shutdown``), so a tab
that closes stops its training; a job another session also waits for goes on for that session.

Budget (dashboard/budget.py): over :data:`dashboard.budget.REQUEST_BUDGET` the page
says what to lower; an explicit "Run anyway" is offered only up to :data:`dashboard.budget.CEILING`,
and only for that one request (its key), never for the rest of the session.
"""

from __future__ import annotations

from collections.abc import Hashable

import streamlit as st

from bptt_core.analyses import cost as K
from bptt_core.units import format_bytes, format_seconds
from dashboard import budget as B
from dashboard import jobs as J
from dashboard.compute import Result, key_of

POLL_SECONDS = 0.5  # how often the progress bar is redrawn while a job runs
CANCEL_WAIT_SECONDS = 1.5  # a cancelled job stops within one training step (well under a second)


def _release_owner(token: str) -> None:
    """Streamlit's hook for a session that left: withdraw it from every job (cancel those only it wanted)."""
    J.default_runner().cancel_owner(token)


@st.cache_resource(scope="session", on_release=_release_owner, show_spinner=False)
def session_owner() -> str:
    """This session's owner token for the job runner (one per session, released when it leaves)."""
    return J.new_owner()


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return ""
    return ", under a second left" if s < 1 else f", about {format_seconds(s)} left"


def _cancelled_keys() -> set:
    return st.session_state.setdefault("_jobs_cancelled", set())


def _overrides() -> set:
    return st.session_state.setdefault("_jobs_override", set())


def _cancel(key: Hashable) -> None:
    J.default_runner().cancel(key, owner=session_owner())
    _cancelled_keys().add(key)


def _run_again(key: Hashable, override: bool = False) -> None:
    _cancelled_keys().discard(key)
    if override:
        _overrides().add(key)


def _supersede(key: Hashable) -> None:
    """One job per page and session: a new key on the same page (its first item) withdraws this session
    from the job it asked for before, so settings changed mid-run never pile up jobs on the workers
    (the old job goes on only if another session waits for it)."""
    slots = st.session_state.setdefault("_jobs_current", {})
    page = key[0] if isinstance(key, tuple) and key else key
    old = slots.get(page)
    if old is not None and old != key:
        J.default_runner().cancel(old, owner=session_owner())
    slots[page] = key


@st.fragment(run_every=POLL_SECONDS)
def _progress(key: Hashable, what: str) -> None:
    """The job's progress bar and Cancel button; reruns the page once the job has finished."""
    job = J.default_runner().get(key)
    if job is None or job.done:
        st.rerun()  # the whole page: it now finds the result (or the failure) under the same key
    s = job.status()
    if s.state == J.QUEUED:
        text = f"{what}: waiting for a free worker ({s.position} ahead)"
    else:
        text = f"{what}: {100 * s.fraction:.0f} % ({s.message}){_fmt_eta(s.eta_s)}"
    st.progress(min(1.0, s.fraction), text=text)
    st.button("Cancel", key=f"_job_cancel_{abs(hash(key))}", on_click=_cancel, args=(key,), icon=":material/cancel:")


def background(
    key: Hashable,
    fn: J.JobFn,
    cost: K.Cost,
    what: str,
    *,
    allow_override: bool = True,
):
    """The job's result when it is done; otherwise show why not (progress, refusal, cancel, failure)
    and return None (the caller stops or shows the rest without it).

    ``key``: the settings the result depends on; ``fn(progress, cancelled)`` computes it (library code
    only: it runs in a worker thread, no Streamlit calls); ``cost``: its estimate, checked against the
    per-request budget before anything is queued.
    """
    runner = J.default_runner()
    owner = session_owner()
    job = runner.get(key)
    _supersede(key)
    if job is not None and job.cancelled() and not job.done:
        job.wait(CANCEL_WAIT_SECONDS)  # winding down after a cancel: let it finish, never start a twin beside it
    if job is not None and job.state == J.DONE:
        return job.result
    if job is not None and job.state == J.FAILED:
        st.error(f"{what} could not run: {job.status().error}")
        return None
    if job is None or job.state == J.CANCELLED:
        if key in _cancelled_keys():
            st.info(f"{what}: cancelled. Change a setting, or run it again.", icon=":material/cancel:")
            st.button("Run again", key=f"_job_again_{abs(hash(key))}", on_click=_run_again, args=(key,))
            return None
        limit = B.CEILING if key in _overrides() else B.REQUEST_BUDGET
        if not B.fits(cost, limit):
            st.warning(B.refusal(cost, limit), icon=":material/hourglass_disabled:")
            if allow_override and limit is B.REQUEST_BUDGET and B.fits(cost, B.CEILING):
                st.button(
                    f"Run anyway (about {format_seconds(cost.seconds)}, at most {format_seconds(B.CEILING.seconds)} allowed)",
                    key=f"_job_override_{abs(hash(key))}",
                    on_click=_run_again,
                    args=(key, True),
                    help="Runs this one request in the background, with progress and a Cancel button.",
                )
            elif allow_override:
                st.caption(
                    f"Beyond the hard ceiling ({format_seconds(B.CEILING.seconds)}, {format_bytes(B.CEILING.bytes)})."
                )
            return None
        try:
            job = runner.submit(key, fn, owner=owner, estimate_s=cost.seconds)
        except J.QueueFull as e:
            st.warning(f"{what} cannot start now: {e}.")
            return None
    else:  # queued or running for another session: wait for it too
        job = runner.submit(key, fn, owner=owner, estimate_s=cost.seconds)
    if job.state == J.DONE:
        return job.result
    _progress(key, what)
    return None


def light_or_background(key: Hashable, fn: J.JobFn, cost: K.Cost, what: str):
    """Light work (budget.light) computed at once in this rerun, in a light slot that heavy jobs never
    hold, and kept under ``key`` like a job's result; anything heavier goes to :func:`background`."""
    runner = J.default_runner()
    done = runner.result(key)
    if done is not None:
        return done
    if B.light(cost):
        try:  # a spinner only while computing: a rerun that finds the result starts none (and sends nothing)
            with st.spinner(f"{what}…"), runner.light_slot():
                result = fn(lambda f, m: None, lambda: False)
        except ValueError as e:  # settings the library refuses: said in the page, as a failed job says it
            st.error(f"{what} could not run: {e}")
            return None
        runner.put(key, result)
        return result
    return background(key, fn, cost, what)


def ask(analysis, ctx, *args, slot: str | None = None, what: str | None = None):
    """The page's one request for ``analysis`` (a :class:`dashboard.compute.Analysis`) on ``ctx`` and
    ``args``: its :class:`~dashboard.compute.Result` when it is there or light enough to compute in this
    rerun; otherwise a background job is running (its progress and Cancel are shown) or the request is
    refused with the reason, and the answer is None. ``slot``: the job's slot when a page keeps its own
    (one played run per page), by default the analysis's name; ``what``: its name in the page, by default
    the analysis's own."""
    key = key_of(analysis, ctx, *args)
    if slot is not None:
        key = (slot, *key[1:])

    def job(progress, cancelled):
        return analysis.run(ctx, *key[2:], progress=progress, cancelled=cancelled)

    value = light_or_background(key, job, analysis.cost(ctx, *key[2:]), what or analysis.what)
    return None if value is None else Result(key, value)


def ask_quietly(analysis, ctx, *args):
    """The result if some page has it already or it is light; otherwise None, without a word and without
    starting anything (a figure that only adds it when it is to hand: model B's lag profile, the Spectrum
    page's decay rate)."""
    key = key_of(analysis, ctx, *args)
    runner = J.default_runner()
    done = runner.result(key)
    if done is None and B.light(analysis.cost(ctx, *key[2:])):
        with runner.light_slot():
            done = analysis.run(ctx, *key[2:], progress=lambda f, m: None, cancelled=lambda: False)
        runner.put(key, done)
    return None if done is None else Result(key, done)
