"""The Streamlit side of BPTT Explorer, split by concern (docs/design.md, "Layout").

- ``page_table``: the one table of pages (router, presets, tests); no heavy imports.
- ``settings``: the URL-bound settings, how a URL value is parsed, and their widgets; presets.
- ``uploads``: the sidebar's "Your own model" and the upload a page analyses.
- ``compute``: torch set up for serving, the compute slots, and every cached analysis.
- ``layout``: ``page_start`` (the sidebar, header and the page's :class:`PageContext`), figures,
  exports, lecture mode.

The numbers and the figures come from ``bptt_core``; nothing here computes them.
"""
