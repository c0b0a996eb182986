"""The gradient-flow monitor as a Lightning callback (docs/design.md, "monitor").

    trainer = lightning.Trainer(callbacks=[GradientFlowCallback("runs/exp1", every=50)], gradient_clip_val=1.0)

The callback builds a :class:`bptt_core.monitor.monitor.GradientFlowMonitor` on the LightningModule when
fitting starts, watches the recurrent module's output by a forward hook (nothing to add to
``training_step``), and calls ``monitor.step()`` from ``on_before_optimizer_step``: after backward,
before Lightning clips the gradients, so the logged norm is the one before clipping. ``clip``
defaults to the Trainer's ``gradient_clip_val`` when it clips by norm. With gradient accumulation,
||dL/dh_t||, the flow matrix and the Lyapunov exponents are those of the last micro-batch before
the optimizer step; the gradient norms are those of the accumulated gradient.

``lightning`` is an optional dependency: only this module imports it.
"""

from __future__ import annotations

from pathlib import Path

from bptt_core.extras import missing_package_message

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        missing_package_message("lightning", "bptt_core.lightning")
        + "; the plain bptt_core.GradientFlowMonitor works without it"
    ) from e

from bptt_core.monitor.monitor import GradientFlowMonitor


class GradientFlowCallback(Callback):
    """Log gradient-flow diagnostics every ``every`` optimizer steps (see :class:`GradientFlowMonitor`).

    ``log_dir``: the run folder; default ``<trainer.log_dir or default_root_dir>/gradient_flow``.
    ``clip``: the threshold to report clip/fired against; default the Trainer's gradient_clip_val
    (when gradient_clip_algorithm is "norm"). Other keywords go to the monitor (``module=``,
    ``strict=``, ``norm=``, ``n_exponents=``, ``tensorboard=``).
    """

    def __init__(self, log_dir=None, every: int = 50, clip: float | None = None, **monitor_kw):
        super().__init__()
        if "auto_watch" in monitor_kw:
            raise ValueError("auto_watch is always on in the callback: it watches the recurrent output by a hook")
        self.log_dir, self.every, self.clip, self.monitor_kw = log_dir, every, clip, monitor_kw
        self.monitor: GradientFlowMonitor | None = None

    def _clip_of(self, trainer) -> float | None:
        if self.clip is not None:
            return self.clip
        val = getattr(trainer, "gradient_clip_val", None)
        algo = str(getattr(trainer, "gradient_clip_algorithm", None) or "norm").lower()
        return float(val) if val and algo.endswith("norm") else None

    def on_fit_start(self, trainer, pl_module) -> None:
        log_dir = self.log_dir
        if log_dir is None:
            log_dir = Path(trainer.log_dir or trainer.default_root_dir) / "gradient_flow"
        self.monitor = GradientFlowMonitor(
            pl_module, log_dir, every=self.every, clip=self._clip_of(trainer), auto_watch=True, **self.monitor_kw
        )

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.monitor is not None:
            self.monitor.step()

    def on_fit_end(self, trainer, pl_module) -> None:
        self.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.close()

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
