"""Plotly figure builders, one family per module: each takes plain numbers and returns a ``go.Figure``.

``style`` (the template and export config), ``labels`` (ticks and labels for log10 numbers), then one
module per family: ``heatmaps``, ``profiles``, ``spectra``, ``training``, ``phase``, ``player``,
``unroll``, ``compare``, and ``diagram`` (the Overview's unrolled network as static SVG).
"""
