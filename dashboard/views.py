"""A view of the dashboard as plain data: which page, which model settings, which page settings.

The "Settings (JSON)" export writes one (:func:`view_json`); loading it back (upload or paste)
reads it (:func:`parse_view`) and reopens the same view. Export file names say what they hold
(:func:`file_stem`): the page and the model's key settings, so a folder of downloads stays legible.
See docs/design.md, "Exports".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from bptt_core.config import ModelConfig

FORMAT = "bptt-explorer-view"
VERSION = 1
MAX_JSON_BYTES = 64 * 1024  # a view is a few hundred bytes; anything far larger is not one
PAGE_SETTING_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class View:
    page: str  # a page key (dashboard page table)
    cfg: ModelConfig
    page_settings: dict = field(default_factory=dict)  # widget key -> plain value (str, int, float, bool)
    upload: dict = field(default_factory=dict)  # uploaded file names and SHA-256s, for the record only
    model_b: ModelConfig | None = None  # compare mode's model B (None: compare mode off)
    b_upload: bool = False  # compare mode: B is the uploaded model (A the settings model)


def view_dict(view: View) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "page": view.page,
        "model": view.cfg.to_dict(),
        "page_settings": dict(view.page_settings),
        **({"uploaded": dict(view.upload)} if view.upload else {}),
        **({"compare": {"model_b": view.model_b.to_dict(), "b_upload": view.b_upload}} if view.model_b else {}),
    }


def view_json(view: View) -> str:
    return json.dumps(view_dict(view), indent=2, sort_keys=False)


def parse_view(text: str | bytes, pages: tuple[str, ...]) -> View:
    """The view a settings JSON describes; ValueError naming what is wrong (never a partial view)."""
    if isinstance(text, bytes):
        if len(text) > MAX_JSON_BYTES:
            raise ValueError(f"the settings file is {len(text):,} bytes; a view is at most {MAX_JSON_BYTES:,}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError("the settings file is not UTF-8 text") from e
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"the settings text is {len(text):,} characters; a view is at most {MAX_JSON_BYTES:,}")
    try:
        d = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"the settings are not valid JSON ({e})") from e
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f'the settings must be a JSON object with "format": "{FORMAT}" (as the export writes it)')
    if d.get("version") != VERSION:
        raise ValueError(f"version must be {VERSION}; got {d.get('version')!r}")
    page = d.get("page")
    if page not in pages:
        raise ValueError(f"page must be one of {', '.join(pages)}; got {page!r}")
    model = d.get("model")
    if not isinstance(model, dict):
        raise ValueError("model must be an object of model settings")
    cfg = ModelConfig.from_dict(model)  # ValueError naming the setting and its range
    ps = d.get("page_settings", {})
    if not isinstance(ps, dict):
        raise ValueError("page_settings must be an object")
    for k, v in ps.items():
        if not PAGE_SETTING_KEY.match(str(k)):
            raise ValueError(f"page_settings: {k!r} is not a setting name")
        if not isinstance(v, (str, int, float, bool)) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"page_settings: {k} must be a finite number, text or true/false; got {v!r}")
        if isinstance(v, str) and len(v) > 200:
            raise ValueError(f"page_settings: {k} is longer than 200 characters")
    up = d.get("uploaded", {})
    model_b, b_upload = _compare_of(d.get("compare"))
    return View(page, cfg, dict(ps), dict(up) if isinstance(up, dict) else {}, model_b, b_upload)


def _compare_of(c) -> tuple[ModelConfig | None, bool]:
    """Compare mode's part of a view: (model B, whether B is the upload); (None, False) when absent."""
    if c is None:
        return None, False
    if not isinstance(c, dict) or not isinstance(c.get("model_b"), dict):
        raise ValueError('compare must be an object with "model_b", an object of model settings')
    try:
        model_b = ModelConfig.from_dict(c["model_b"])
    except ValueError as e:
        raise ValueError(f"compare.model_b: {e}") from None
    b_upload = c.get("b_upload", False)
    if not isinstance(b_upload, bool):
        raise ValueError(f"compare.b_upload must be true or false; got {b_upload!r}")
    return model_b, b_upload


def _refuse_constant(name: str):
    raise ValueError(f"the settings hold {name}, which is not a number JSON allows")


def file_stem(page: str, cfg: ModelConfig, uploaded: str | None = None) -> str:
    """bptt-gradient-flow-lstm-H64-T50-orthogonal-g1-seed0: the page and the key settings, file-name safe."""
    if uploaded:
        model = "upload-" + re.sub(r"[^A-Za-z0-9]+", "-", uploaded.rsplit(".", 1)[0]).strip("-")[:40]
    else:
        cell = cfg.cell + (f"-{cfg.activation}" if cfg.cell == "rnn" else "")
        scale = f"rho{cfg.spectral_radius:g}" if cfg.spectral_radius else f"g{cfg.gain:g}"
        model = f"{cell}-H{cfg.hidden_size}-{cfg.init}-{scale}"
    return f"bptt-{page.replace('_', '-')}-{model}-T{cfg.seq_len}-seed{cfg.seed}".replace(".", "p")
