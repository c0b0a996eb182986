"""What one chart of each page costs the browser to draw: alone in headless Chromium, Plotly.js (the same
major version Streamlit bundles) draws each figure the pages send at H = 64 and H = 65, alternately, two
ways: anew (``Plotly.newPlot`` on a fresh div, what Streamlit 1.67 does whenever a figure changes, since
the chart's identity hashes its figure) and in place (``Plotly.react`` on the kept div). The median of
12 draws each, in ms, a draw ending at the next animation frame.

    python bench/bench_plotly.py                              # Gradient flow, Spectrum, Truncated BPTT, ...
    python bench/bench_plotly.py --pages gradient-flow,spectrum
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "browser")]

import harness as H  # noqa: E402

PAGES = "gradient-flow,spectrum,truncation,calculator,phase-diagram"
DRAWS = 12

DRAW_JS = """async ([a, b, n, anew]) => {
  const cfg = {displaylogo: false, responsive: true};
  const fresh = () => { document.body.innerHTML = '<div id="g" style="width:1000px"></div>';
                        return document.getElementById('g'); };
  let d = fresh();
  await Plotly.newPlot(d, a.data, a.layout, cfg);
  const took = [];
  for (let i = 0; i < n; i++) {
    const s = JSON.parse(JSON.stringify(i % 2 ? a : b));
    const t = performance.now();
    if (anew) { Plotly.purge(d); d = fresh(); await Plotly.newPlot(d, s.data, s.layout, cfg); }
    else await Plotly.react(d, s.data, s.layout, cfg);
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
    took.push(performance.now() - t);
  }
  took.sort((x, y) => x - y);
  return took[Math.floor(n / 2)];
}"""


def page_figures(path: str) -> dict[str, tuple[dict, dict]]:
    """Every chart's figure (key -> (at H = 64, at H = 65)) as the page sends it (AppTest, through the router)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page(f"pages/{path}.py").run()
    seen: dict[str, dict[int, dict]] = {}
    for h in (64, 65):
        at.slider(key="m_hidden").set_value(h).run()
        for c in at.get("plotly_chart"):
            seen.setdefault(c.key or c.proto.id, {})[h] = json.loads(c.proto.spec)
    return {k: (v[64], v[65]) for k, v in seen.items() if len(v) == 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", default=PAGES, help=f"URL paths of the pages (default {PAGES})")
    args = ap.parse_args()
    import plotly
    from playwright.sync_api import sync_playwright

    script = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    figures = {p: page_figures(p) for p in args.pages.split(",") if p}
    with sync_playwright() as pw:
        browser = H.launch_chromium(pw)
        page = browser.new_page(viewport=H.VIEWPORT)
        page.set_content("<html><body style='margin:0'></body></html>")
        page.add_script_tag(path=str(script))
        version = page.evaluate("Plotly.version")
        print(f"Plotly.js {version}, Chromium {browser.version}, {os.cpu_count()} cores; median of {DRAWS} draws\n")
        print("| page | chart | drawn anew (newPlot) | in place (react) |\n|---|---|---|---|")
        for path, figs in figures.items():
            for key, (a, b) in figs.items():
                anew, kept = (page.evaluate(DRAW_JS, [a, b, DRAWS, flag]) for flag in (True, False))
                print(f"| {path} | {key} | {anew:.1f} ms | {kept:.1f} ms |")
        browser.close()


if __name__ == "__main__":
    main()
