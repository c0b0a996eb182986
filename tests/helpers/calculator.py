"""The Gradient flow page's summary of a model, for the calculator's tests to compare against."""

from __future__ import annotations


def _page_flow(cfg, upload=None):
    from bptt_core.analyses.numbers import flow_matrix_of, spectrum_of
    from bptt_core.report.panels import flow_summary

    return flow_summary(flow_matrix_of(cfg, upload=upload), spectrum_of(cfg, upload), cfg.cell)
