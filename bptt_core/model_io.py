"""Bring your own model: load a trained single-layer RNN / LSTM / GRU, and input sequences, safely.

Model files are ``state_dict``s, as ``torch.save(model.state_dict(), "m.pt")`` or
``safetensors.torch.save_file(model.state_dict(), "m.safetensors")`` write them. The architecture
is read off the keys and shapes (PyTorch's own layout, ``torch.nn.RNN`` docs):

    weight_ih_l0 (G*H, I)   weight_hh_l0 (G*H, H)   bias_ih_l0 (G*H,)   bias_hh_l0 (G*H,)

with G = 1 (vanilla RNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU, gates r, z, n). The vanilla
cell's nonlinearity is not stored in the weights: it is an argument (or safetensors metadata).

Security. Nothing uploaded is ever unpickled into arbitrary objects. A ``.pt`` file is a pickle,
and unpickling can call any importable function (``__reduce__``), so two independent checks
stand between an upload and ``pickle``'s object construction:

1. before anything is unpickled, the pickle program inside the archive is *disassembled*
   (``pickletools.genops``, which only parses) and every global it would import is compared with
   the few a state_dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
   ``torch.*Storage`` ...); anything else (``os.system``, ``builtins.exec`` ...) is refused;
2. the file is then read only by ``torch.load(..., weights_only=True)``, PyTorch's restricted
   unpickler, which refuses every global outside its own allowlist.

``.safetensors`` has no code path at all (a JSON header and raw bytes). ``.npy`` sequences are
read with ``numpy.load(allow_pickle=False)``. Every upload is size-limited (:data:`MAX_UPLOAD_BYTES`)
and every failure is a :class:`ModelFileError` / :class:`SequenceFileError` (both ``ValueError``)
whose message says what is wrong and what is expected.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickletools
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import (
    ACTIVATIONS,
    MAX_HIDDEN,
    MAX_INPUT,
    MAX_SEQ_LEN,
    MAX_STACK,
    MAX_UPLOAD_BYTES,
    MODEL_EXTENSIONS,
    SEQUENCE_EXTENSIONS,
    check_choice,
)
from .models import ElmanRNN, cell_kind

MAX_UNPACKED_BYTES = 4 * MAX_UPLOAD_BYTES  # a .pt archive may not expand beyond this (zip bombs)
MAX_ARCHIVE_ENTRIES = 10_000
GATES = {1: "rnn", 4: "lstm", 3: "gru"}  # G, the number of gate blocks stacked in W_ih / W_hh
READOUT_NAMES = ("readout", "fc", "linear", "out", "output", "head", "decoder", "classifier")
SAVE_HOW = "torch.save(model.state_dict(), 'model.pt')"
PT_SAVE_HINT = f"expected a state_dict saved with {SAVE_HOW}"

# The only globals a state_dict's pickle needs; anything else is refused before unpickling.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
    ("_codecs", "encode"),  # how protocol 2 pickles a bytes value: str -> bytes, nothing else
}
_STORAGE = re.compile(r"[A-Za-z0-9]*Storage")  # torch.FloatStorage, torch.BFloat16Storage, ...
_LAYER_KEY = re.compile(r"(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


class UploadError(ValueError):
    """An uploaded file that cannot be used; the message says what is wrong and what is expected."""


class ModelFileError(UploadError):
    """A model file that is not a usable single-layer RNN / LSTM / GRU state_dict."""


class SequenceFileError(UploadError):
    """A sequence file (CSV / .npy) that is not a finite (T, input_size) table of numbers."""


@dataclass
class LoadedModel:
    module: nn.Module  # float32, eval mode: ElmanRNN (vanilla) or torch.nn.LSTM / GRU
    cell: str  # rnn | lstm | gru
    input_size: int  # I
    hidden_size: int  # H
    nonlinearity: str  # vanilla: tanh | relu | sigmoid | linear; gated cells: "tanh"
    notes: list[str] = field(default_factory=list)  # what was assumed or ignored, for the page
    readout: nn.Linear | None = None  # a linear readout (O, H) found beside the recurrent layer
    prefix: str = ""  # the key prefix of the recurrent layer, e.g. "rnn." or "encoder.rnn."
    format: str = "pt"  # pt | safetensors
    num_layers: int = 1  # stacked layers (torch's num_layers)

    def summary(self) -> str:
        act = f", {self.nonlinearity}" if self.cell == "rnn" else ""
        out = f", readout to {self.readout.out_features} outputs" if self.readout is not None else ""
        layers = f", num_layers={self.num_layers}" if self.num_layers > 1 else ""
        return f"{self.cell.upper()}{act}: input_size={self.input_size}, hidden_size={self.hidden_size}{layers}{out}"


def model_fingerprint(data: bytes) -> str:
    """sha256 of the uploaded bytes: a hashable key to cache analyses of one uploaded model by."""
    return hashlib.sha256(bytes(data)).hexdigest()


# -- reading the bytes ---------------------------------------------------------------------------


def _check_bytes(data, filename: str, allowed: tuple[str, ...], error: type[UploadError]) -> tuple[bytes, str]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise error(f"the upload must be bytes, got {type(data).__name__}: expected the file's contents")
    data = bytes(data)
    if not isinstance(filename, str):
        raise error(f"filename must be a string, got {type(filename).__name__}: expected the uploaded file's name")
    ext = Path(filename).suffix.lower()
    if ext not in allowed:
        raise error(
            f"unsupported file type {ext or '(no extension)'!r} for {filename!r}: expected one of {', '.join(allowed)}"
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise error(
            f"{filename} is {len(data) / 2**20:.1f} MiB: the upload limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MiB "
            "(expected a single-layer model or sequence within the explorer's size limits)"
        )
    if not data:
        raise error(f"{filename} is empty (0 bytes): expected a {ext} file")
    return data, ext


def _looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}


def _pickle_globals(program: bytes) -> list[tuple[str, str]]:
    """Every (module, name) a pickle program would import, found by disassembling it (nothing runs).

    Protocols 0-3 spell globals inline (GLOBAL "module name"). From protocol 4 on, STACK_GLOBAL takes
    them from the two values pushed just before it, which the pickler writes as string literals or
    memo lookups of earlier ones; ``pushed`` follows those (None for anything that is not a known
    string), so a name computed any other way reads as unknown and is refused.
    """
    found, pushed, memo = [], [], {}
    for op, arg, _ in pickletools.genops(program):
        name = op.name
        if name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            found.append((module, attr))
            pushed.append(None)
        elif name in ("INST", "OBJ"):
            found.append(("<INST/OBJ>", str(arg)))  # state_dicts never build objects this way
        elif name in _STRING_OPS:
            pushed.append(arg if isinstance(arg, str) else None)
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
        elif name == "STACK_GLOBAL":
            module, attr = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            found.append((str(module), str(attr)))  # "None" is no module: refused
            pushed.append(None)
        else:
            pushed.append(None)  # any other value, or a stack operation: not a name we know
    return found


def _is_safe_global(module: str, name: str) -> bool:
    return (module, name) in _SAFE_GLOBALS or (module == "torch" and _STORAGE.fullmatch(name) is not None)


def _refuse_code(where: str, module: str, name: str) -> ModelFileError:
    return ModelFileError(
        f"refused: the file's pickle would import {module}.{name}, which is not part of a plain state_dict "
        f"({where}). Uploaded files are never unpickled into arbitrary objects, so nothing in it was run. "
        f"Expected a dict of tensors saved with {SAVE_HOW}, or a .safetensors file"
    )


def _scan_archive(data: bytes) -> None:
    """Zip-level checks (corruption, expansion) and the disassembly check of the pickle program."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as e:  # BadZipFile, bad UTF-8 names, unsupported compression, ...
        raise ModelFileError(f"the .pt archive is truncated or corrupt ({type(e).__name__}); {PT_SAVE_HINT}") from None
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise ModelFileError(
            f"the .pt archive has {len(infos)} entries: expected a state_dict archive (at most {MAX_ARCHIVE_ENTRIES})"
        )
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ModelFileError(
            f"the .pt archive would expand to {unpacked / 2**20:.0f} MiB: the limit is "
            f"{MAX_UNPACKED_BYTES / 2**20:.0f} MiB; expected a state_dict of a model within the size limits"
        )
    pickles = [i for i in infos if i.filename.endswith("data.pkl")]
    if len(pickles) != 1:
        raise ModelFileError(f"the archive is not a torch.save file (no single data.pkl entry); {PT_SAVE_HINT}")
    try:
        program = archive.read(pickles[0])
        names = _pickle_globals(program)
    except Exception as e:  # corrupt entry or malformed pickle program: refuse, never unpickle
        raise ModelFileError(f"the .pt file's pickle is corrupt ({type(e).__name__}); {PT_SAVE_HINT}") from None
    for module, name in names:
        if not _is_safe_global(module, name):
            raise _refuse_code("found before loading", module, name)
    if program[:1] == b"\x80" and program[1] >= 4:  # torch's weights_only reader stops at protocol 4's FRAME
        raise ModelFileError(
            f"the file was saved with pickle protocol {program[1]}, which torch.load(weights_only=True) cannot "
            f"read; expected torch.save's default (protocol 2): {SAVE_HOW}, or a .safetensors file"
        )


def _torch_load(data: bytes):
    if data[:4] == b"PK\x03\x04":
        _scan_archive(data)
    elif _looks_like_safetensors(data):
        raise ModelFileError("this looks like a safetensors file named .pt: expected a .safetensors extension for it")
    elif data[:1] != b"\x80":  # neither a zip archive nor a pickle (legacy torch.save files are pickles)
        raise ModelFileError(
            f"not a PyTorch file: torch.save writes a zip archive (starting with 'PK'), this starts with "
            f"{data[:4]!r}; {PT_SAVE_HINT}"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the verdict below says it all
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:  # torch's own messages suggest weights_only=False: never pass that on
        text = str(e)
        blocked = re.search(r"GLOBAL ([\w.]+)\.(\w+)", text)
        if blocked:
            raise _refuse_code("refused by torch.load(weights_only=True)", blocked.group(1), blocked.group(2)) from None
        if "Weights only load failed" in text:
            raise ModelFileError(
                "refused: the file is not a plain state_dict that torch.load(weights_only=True) can read "
                f"(nothing in it was run); expected a dict of tensors saved with {SAVE_HOW}"
            ) from None
        raise ModelFileError(
            f"not a readable PyTorch file ({type(e).__name__}): the file is truncated, corrupt or not made by "
            f"torch.save; {PT_SAVE_HINT}"
        ) from None


def _safetensors_load(data: bytes) -> tuple[dict, dict]:
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as e:
        raise ModelFileError(
            f"not a valid .safetensors file ({e}): expected safetensors.torch.save_file(model.state_dict(), path)"
        ) from None
    try:  # the header load() just validated: 8-byte length, then JSON with an optional __metadata__
        (n,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except Exception:
        meta = {}
    if not isinstance(meta, dict):
        raise ModelFileError("the .safetensors __metadata__ is not a JSON object: expected string keys and values")
    return tensors, meta


# -- from a dict of tensors to a module ----------------------------------------------------------


# The diagonal cells (bptt_core.cells) by the parameter that only they have.
DIAGONAL_SIGNATURES = {"nu_log": "lru", "weight_z": "mingru", "weight_f": "minlstm", "A_log": "ssm"}


def _has_layer(d: dict) -> bool:
    ends = ("weight_ih_l0", "weight_ih", *DIAGONAL_SIGNATURES)
    return any(isinstance(k, str) and k.endswith(ends) for k in d)


def _as_state_dict(obj) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The dict of tensors holding the recurrent layer: the file's top level, or the one nested dict
    of a training checkpoint ({"model_state_dict": {...}, "optimizer": ..., "epoch": 3})."""
    notes = []
    if isinstance(obj, nn.Module):  # cannot happen under weights_only, kept for direct callers
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise ModelFileError(
            f"not a state_dict: the file holds a {type(obj).__name__}; expected a dict of parameter names to "
            f"tensors (saved with {SAVE_HOW})"
        )
    if not _has_layer(obj):
        inner = [k for k, v in obj.items() if isinstance(v, dict) and _has_layer(v)]
        if len(inner) > 1:
            raise ModelFileError(
                f"ambiguous checkpoint: {len(inner)} entries hold a recurrent layer ({inner[:4]}); expected one"
            )
        if inner:
            notes.append(f"checkpoint: used the state_dict stored under {inner[0]!r}")
            obj = obj[inner[0]]
    bad_keys = [k for k in obj if not isinstance(k, str)]
    if bad_keys:
        raise ModelFileError(
            f"state_dict keys must be strings (parameter names), got {bad_keys[:3]!r}: expected {SAVE_HOW}"
        )
    # Values that are not tensors (an epoch count, a config) are set aside, unless the name is one
    # of the recurrent layer's: then the layer checks below say that it must be a tensor.
    extra = [k for k, v in obj.items() if not isinstance(v, torch.Tensor) and not _LAYER_KEY.search(k)]
    if extra and len(extra) == len(obj):
        raise ModelFileError(
            f"not a state_dict: entries {extra[:5]} are not tensors; expected a dict of parameter names to tensors "
            f"(saved with {SAVE_HOW})"
        )
    if extra:
        notes.append(f"ignored {len(extra)} entries that are not tensors ({', '.join(map(repr, extra[:3]))})")
    obj = {k: v for k, v in obj.items() if k not in extra}
    if not obj:
        raise ModelFileError(f"the state_dict is empty: expected weight_ih_l0 and weight_hh_l0 (saved with {SAVE_HOW})")
    return obj, notes


def _find_layer(sd: dict[str, torch.Tensor]) -> tuple[str, str]:
    """The prefix and suffix ("_l0", or "" for RNNCell-style keys) of the one recurrent layer."""
    found = [(k[: -len("weight_ih_l0")], "_l0") for k in sd if k.endswith("weight_ih_l0")]
    if not found:  # nn.RNNCell / LSTMCell / GRUCell: same math, keys without the layer suffix
        found = [(k[: -len("weight_ih")], "") for k in sd if k.endswith("weight_ih") and k[:-2] + "hh" in sd]
    if not found:
        shown = ", ".join(sorted(sd)[:8]) + (", ..." if len(sd) > 8 else "")
        raise ModelFileError(
            "no recurrent layer found: expected keys weight_ih_l0 and weight_hh_l0 (and optionally bias_ih_l0, "
            f"bias_hh_l0), possibly under a common prefix such as 'rnn.'; found {shown}"
        )
    if len(found) > 1:
        names = ", ".join(repr(p + "weight_ih" + s) for p, s in found)
        raise ModelFileError(
            f"ambiguous: {len(found)} recurrent layers found ({names}); expected exactly one single-layer "
            "RNN / LSTM / GRU: save only the recurrent module's state_dict"
        )
    return found[0]


def _check_layer_keys(sd: dict, prefix: str, suffix: str) -> int:
    """The number of stacked layers (l0 .. l{L-1}, each with weight_ih and weight_hh), after refusing
    what the explorer cannot analyse (bidirectional, projections) with a message naming the key."""
    mine = [k[len(prefix) :] for k in sd if k.startswith(prefix)]
    layers = [m for m in map(_LAYER_KEY.fullmatch, mine) if m]
    if any(m.group(4) for m in layers):
        raise ModelFileError(
            "bidirectional models are not supported: expected bidirectional=False (found *_reverse keys; the "
            "backward direction's chain runs in reversed time: save each direction as its own module)"
        )
    if any(m.group(2) == "hr" for m in layers):
        raise ModelFileError("LSTM projections are not supported: expected proj_size=0 (found weight_hr_l0)")
    if (prefix + "weight_hh" + suffix) not in sd:
        raise ModelFileError(
            f"found {prefix}weight_ih{suffix} but no {prefix}weight_hh{suffix}: expected both weight_ih{suffix} "
            f"and weight_hh{suffix}"
        )
    if suffix == "":  # RNNCell-style keys: one layer by construction
        return 1
    depth = 1 + max([int(m.group(3)) for m in layers], default=0)
    if depth > MAX_STACK:
        raise ModelFileError(f"num_layers={depth} is out of range: expected num_layers in [1, {MAX_STACK}]")
    for k in range(depth):
        for w in ("weight_ih", "weight_hh"):
            if f"{prefix}{w}_l{k}" not in sd:
                raise ModelFileError(
                    f"missing {prefix}{w}_l{k}: a {depth}-layer model (keys up to _l{depth - 1}) needs "
                    f"weight_ih_l{k} and weight_hh_l{k} in every layer"
                )
    return depth


def _check_tensor(key: str, t, expected: tuple[int, ...] | None = None, what: str = "") -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ModelFileError(f"{key} is a {type(t).__name__}: expected a tensor")
    if t.layout != torch.strided or t.is_meta or t.is_quantized:
        raise ModelFileError(f"{key} is a {t.layout} / meta / quantized tensor: expected a plain dense tensor")
    if not t.is_floating_point():
        raise ModelFileError(f"{key} has dtype {t.dtype}: expected floating point (float16/bfloat16/float32/float64)")
    if expected is not None and tuple(t.shape) != expected:
        raise ModelFileError(f"{key} has shape {tuple(t.shape)}: expected {expected}{what}")
    return t


def _check_size(name: str, value: int, hi: int) -> None:
    if not 1 <= value <= hi:
        raise ModelFileError(f"{name}={value} is out of range: expected {name} in [1, {hi}] (the explorer's limit)")


def _infer(sd: dict, prefix: str, suffix: str, depth: int = 1) -> tuple[str, int, int, dict[str, torch.Tensor]]:
    k_ih, k_hh = f"{prefix}weight_ih{suffix}", f"{prefix}weight_hh{suffix}"
    W_ih, W_hh = _check_tensor(k_ih, sd[k_ih]), _check_tensor(k_hh, sd[k_hh])
    if W_hh.dim() != 2:
        raise ModelFileError(f"{k_hh} has shape {tuple(W_hh.shape)}: expected a 2-D (G*H, H) matrix")
    rows, H = W_hh.shape
    if H < 1 or rows % H or rows // H not in GATES:
        raise ModelFileError(
            f"{k_hh} has shape {tuple(W_hh.shape)}: expected (G*H, H) with G = 1 (RNN), 3 (GRU) or 4 (LSTM), "
            f"i.e. ({H}, {H}), ({3 * H}, {H}) or ({4 * H}, {H})"
        )
    G = rows // H
    cell = GATES[G]
    _check_size("hidden_size", H, MAX_HIDDEN)
    gates = f" ({cell}: {G} gate blocks of hidden_size={H})"
    if W_ih.dim() != 2 or W_ih.shape[0] != rows:
        raise ModelFileError(
            f"{k_ih} has shape {tuple(W_ih.shape)}: expected ({rows}, input_size) to match {k_hh}{gates}"
        )
    I = W_ih.shape[1]
    _check_size("input_size", I, MAX_INPUT)
    weights = {"weight_ih_l0": W_ih, "weight_hh_l0": W_hh}
    biases = [k for k in ("bias_ih", "bias_hh") if f"{prefix}{k}{suffix}" in sd]
    if len(biases) == 1:
        raise ModelFileError(
            f"found {prefix}{biases[0]}{suffix} alone: expected both bias_ih{suffix} and bias_hh{suffix}, or neither"
        )
    for b in biases:
        key = f"{prefix}{b}{suffix}"
        weights[f"{b}_l0"] = _check_tensor(key, sd[key], (rows,), gates)
    for k in range(1, depth):  # stacked: every later layer reads the one below's h (H inputs)
        for w, shape in (("weight_ih", (rows, H)), ("weight_hh", (rows, H))):
            key = f"{prefix}{w}_l{k}"
            weights[f"{w}_l{k}"] = _check_tensor(
                key, sd[key], shape, f" (layer {k} of a {depth}-layer {cell}: {G} gate blocks of hidden_size={H})"
            )
        for b in biases:
            key = f"{prefix}{b}_l{k}"
            if key not in sd:
                raise ModelFileError(f"missing {key}: expected shape ({rows},), as layer 0 has {prefix}{b}_l0")
            weights[f"{b}_l{k}"] = _check_tensor(key, sd[key], (rows,), gates)
    for key, t in weights.items():
        if not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ModelFileError(f"{prefix}{key} has {bad} non-finite entries (NaN/inf): expected finite weights")
    return cell, I, H, weights


def _build(cell: str, I: int, H: int, nonlinearity: str, weights: dict, depth: int = 1) -> tuple[nn.Module, list[str]]:
    notes = []
    has_bias = "bias_ih_l0" in weights
    if depth > 1:
        if cell == "rnn" and nonlinearity not in ("tanh", "relu"):
            raise ModelFileError(
                f"nonlinearity={nonlinearity!r} with {depth} layers: a stacked vanilla RNN is torch's nn.RNN, "
                "expected tanh or relu"
            )
        kw = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H, depth, bias=has_bias, **kw)
    elif cell == "rnn":
        module = ElmanRNN(I, H, nonlinearity)  # nn.RNN's parameter names, and all four activations
        if not has_bias:
            zeros = torch.zeros(H)
            weights = {**weights, "bias_ih_l0": zeros, "bias_hh_l0": zeros}
            notes.append("no biases in the file (bias=False): using zero biases")
    else:
        module = (nn.LSTM if cell == "lstm" else nn.GRU)(I, H, bias=has_bias)
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in weights.values()} - {"float32"})
    if dtypes:
        notes.append(f"weights converted from {', '.join(dtypes)} to float32")
    with torch.no_grad():
        module.load_state_dict({k: v.detach().to(torch.float32) for k, v in weights.items()}, strict=True)
    return module.float().eval(), notes


def _find_readout(sd: dict, layer_keys: set[str], H: int, notes: list[str]) -> nn.Linear | None:
    """A linear readout (O, H) stored beside the recurrent layer, by name first, else if unique."""
    cands = []
    for k, w in sd.items():
        if k in layer_keys or not k.endswith("weight") or not isinstance(w, torch.Tensor):
            continue
        if w.dim() == 2 and w.shape[1] == H and w.is_floating_point():
            base = k[: -len("weight")]
            cands.append((base, w, sd.get(base + "bias")))
    if not cands:
        return None
    named = [c for c in cands if c[0].rstrip(".").split(".")[-1] in READOUT_NAMES]
    pick = named if len(named) == 1 else cands if len(cands) == 1 else []
    if not pick:
        notes.append(
            f"no readout used: several (O, {H}) matrices could be one ({', '.join(c[0] + 'weight' for c in cands[:4])})"
        )
        return None
    base, w, b = pick[0]
    O = w.shape[0]
    if b is not None and (not isinstance(b, torch.Tensor) or tuple(b.shape) != (O,) or not b.is_floating_point()):
        notes.append(f"no readout used: {base}bias does not have shape ({O},)")
        return None
    if (
        not 1 <= O <= MAX_INPUT
        or w.layout != torch.strided
        or not bool(torch.isfinite(w).all())
        or (b is not None and not bool(torch.isfinite(b).all()))
    ):
        notes.append(f"no readout used: {base}weight must be finite with at most {MAX_INPUT} outputs")
        return None
    readout = nn.Linear(H, O, bias=b is not None)
    with torch.no_grad():
        readout.weight.copy_(w.to(torch.float32))
        if b is not None:
            readout.bias.copy_(b.to(torch.float32))
    notes.append(f"readout: {base}weight ({O} outputs)")
    return readout.eval()


def model_from_state_dict(sd, nonlinearity: str | None = None, fmt: str = "pt") -> LoadedModel:
    """Infer and build the single recurrent layer (and readout) from a dict of tensors."""
    sd, notes = _as_state_dict(sd)
    diagonal = _find_diagonal_cell(sd)
    if diagonal is not None:
        return _diagonal_model(sd, *diagonal, notes, nonlinearity, fmt)
    prefix, suffix = _find_layer(sd)
    depth = _check_layer_keys(sd, prefix, suffix)
    if prefix:
        notes.append(f"recurrent layer found under the key prefix {prefix!r}")
    if suffix == "":
        notes.append("RNNCell/LSTMCell/GRUCell-style keys (no _l0 suffix): read as a one-layer network")
    cell, I, H, weights = _infer(sd, prefix, suffix, depth)
    if depth > 1:
        notes.append(f"{depth} stacked layers: the analyses read the top layer's h (pick another layer where offered)")
    if cell == "rnn":
        if nonlinearity is None:
            nonlinearity = "tanh"
            notes.append(
                "the vanilla RNN's nonlinearity is not stored in a state_dict: assuming tanh "
                "(choose relu, sigmoid or linear if the model was trained with one)"
            )
        check_choice("nonlinearity", nonlinearity, ACTIVATIONS)
    else:
        if nonlinearity not in (None, "tanh"):
            check_choice("nonlinearity", nonlinearity, ACTIVATIONS)
            notes.append(f"nonlinearity={nonlinearity!r} ignored: a {cell.upper()}'s activations are fixed")
        nonlinearity = "tanh"
    module, more = _build(cell, I, H, nonlinearity, weights, depth)
    layer_keys = {k for k in sd if k.startswith(prefix) and _LAYER_KEY.fullmatch(k[len(prefix) :])}
    layer_keys |= {f"{prefix}{w}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    readout = _find_readout(sd, layer_keys, H, notes)
    others = len(sd) - len(layer_keys & set(sd)) - (0 if readout is None else len(readout.state_dict()))
    if others > 0:
        notes.append(f"{others} other entries of the state_dict ignored")
    return LoadedModel(module, cell, I, H, nonlinearity, notes + more, readout, prefix, fmt, depth)


def _find_diagonal_cell(sd: dict) -> tuple[str, str] | None:
    """(cell, key prefix) of the one diagonal cell in the state_dict, or None when there is none."""
    found = [(cell, k[: -len(name)]) for k in sd for name, cell in DIAGONAL_SIGNATURES.items() if k.endswith(name)]
    found = [(c, p) for c, p in found if not p or p.endswith(".")]
    if len(found) > 1:
        names = ", ".join(f"{p}{c}" for c, p in found[:4])
        raise ModelFileError(f"ambiguous: {len(found)} recurrent cells found ({names}); expected exactly one")
    return found[0] if found else None


def _diagonal_model(sd: dict, cell: str, prefix: str, notes: list, nonlinearity, fmt: str) -> LoadedModel:
    """A diagonal cell from its keys: sizes read off the shapes, then every key checked against the
    shape a fresh module of those sizes has (a message naming the key and the expected shape)."""
    from .cells import NEW_CELLS

    wide = {"lru": "B_re", "mingru": "weight_z", "minlstm": "weight_f", "ssm": "weight_delta"}[cell]
    key = prefix + wide
    if key not in sd:
        raise ModelFileError(f"missing {key}: a {cell} state_dict has {wide} of shape (hidden_size, input_size)")
    W = _check_tensor(key, sd[key])
    if W.dim() != 2:
        raise ModelFileError(f"{key} has shape {tuple(W.shape)}: expected a 2-D (hidden_size, input_size) matrix")
    H, I = W.shape
    _check_size("hidden_size", H, MAX_HIDDEN)
    _check_size("input_size", I, MAX_INPUT)
    module = NEW_CELLS[cell](I, H)
    expected = module.state_dict()
    weights = {}
    for name, ref in expected.items():
        k = prefix + name
        if k not in sd:
            raise ModelFileError(f"missing {k}: a {cell} state_dict has {', '.join(expected)}")
        weights[name] = _check_tensor(k, sd[k], tuple(ref.shape), f" ({cell} with input_size={I}, hidden_size={H})")
        if not bool(torch.isfinite(weights[name]).all()):
            raise ModelFileError(f"{k} has non-finite entries (NaN/inf): expected finite weights")
    if nonlinearity not in (None, "tanh"):
        check_choice("nonlinearity", nonlinearity, ACTIVATIONS)
        notes.append(f"nonlinearity={nonlinearity!r} ignored: the {cell} cell has no choice of activation")
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in weights.values()} - {"float32"})
    if dtypes:
        notes.append(f"weights converted from {', '.join(dtypes)} to float32")
    with torch.no_grad():
        module.load_state_dict({k: v.detach().to(torch.float32) for k, v in weights.items()}, strict=True)
    if prefix:
        notes.append(f"recurrent cell found under the key prefix {prefix!r}")
    layer_keys = {prefix + k for k in expected}
    readout = _find_readout(sd, layer_keys, H, notes)
    others = len(sd) - len(layer_keys) - (0 if readout is None else len(readout.state_dict()))
    if others > 0:
        notes.append(f"{others} other entries of the state_dict ignored")
    return LoadedModel(module.float().eval(), cell, I, H, "tanh", notes, readout, prefix, fmt)


def load_model(data: bytes, filename: str, nonlinearity: str | None = None) -> LoadedModel:
    """A trained single-layer RNN / LSTM / GRU from the bytes of a ``.pt`` / ``.pth`` / ``.safetensors`` file.

    ``nonlinearity`` (vanilla RNN only): tanh | relu | sigmoid | linear; None means the file's
    safetensors metadata if it names one, else tanh (said in ``notes``). Raises
    :class:`ModelFileError` (a ``ValueError``) for anything else, and never runs code from the file.
    """
    if nonlinearity is not None:
        check_choice("nonlinearity", nonlinearity, ACTIVATIONS)
    data, ext = _check_bytes(data, filename, MODEL_EXTENSIONS, ModelFileError)
    if ext == ".safetensors":
        sd, meta = _safetensors_load(data)
        meta_act = meta.get("nonlinearity")
        if meta_act is not None and meta_act not in ACTIVATIONS:
            raise ModelFileError(
                f"the .safetensors metadata says nonlinearity={meta_act!r}: expected one of {', '.join(ACTIVATIONS)}"
            )
        loaded = model_from_state_dict(sd, nonlinearity or meta_act, "safetensors")
        if meta.get("cell") not in (None, loaded.cell):
            raise ModelFileError(
                f"the .safetensors metadata says cell={meta['cell']!r} but the weights' shapes are those of a "
                f"{loaded.cell}: expected matching metadata (or none)"
            )
        if nonlinearity is None and meta_act is not None and loaded.cell == "rnn":
            loaded.notes.append(f"nonlinearity {meta_act} read from the file's metadata")
        return loaded
    return model_from_state_dict(_torch_load(data), nonlinearity, "pt")


# -- writing (tests, command line) ---------------------------------------------------------------


def model_bytes(module: nn.Module, filename: str, readout: nn.Linear | None = None) -> bytes:
    """What :func:`save_model` writes, in memory. Keys "rnn.*" and "readout.*" when a readout is given."""
    kind = cell_kind(module)
    sd = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    if readout is not None:
        sd = {f"rnn.{k}": v for k, v in sd.items()}
        sd |= {f"readout.{k}": v.detach().cpu().contiguous() for k, v in readout.state_dict().items()}
    ext = Path(filename).suffix.lower()
    if ext == ".safetensors":
        from safetensors.torch import save

        act = getattr(module, "nonlinearity", "tanh") if kind == "rnn" else "tanh"
        return save(sd, metadata={"cell": kind, "nonlinearity": act})
    if ext in (".pt", ".pth"):
        buf = io.BytesIO()
        torch.save(sd, buf)
        return buf.getvalue()
    raise ValueError(f"filename must end in one of {', '.join(MODEL_EXTENSIONS)}, got {filename!r}")


def save_model(module: nn.Module, path, readout: nn.Linear | None = None) -> Path:
    """Write ``module``'s state_dict (and ``readout``'s) as .pt / .pth / .safetensors, by suffix."""
    path = Path(path)
    path.write_bytes(model_bytes(module, path.name, readout))
    return path


# -- sequences -----------------------------------------------------------------------------------


def _finish_sequence(arr: np.ndarray, input_size: int, filename: str) -> torch.Tensor:
    if arr.ndim == 1 and input_size == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise SequenceFileError(
            f"{filename} holds a {arr.ndim}-D array of shape {arr.shape}: expected a 2-D (T, input_size) = "
            f"(T, {input_size}) table, one row per time step"
        )
    T, J = arr.shape
    if T == 0:
        raise SequenceFileError(f"{filename} has no rows: expected at least 1 time step")
    if J != input_size:
        raise SequenceFileError(
            f"the model expects input_size={input_size} columns, got {J} (in {filename}): expected one column per input"
        )
    if T > MAX_SEQ_LEN:
        raise SequenceFileError(f"{filename} has {T} time steps: expected at most seq_len <= {MAX_SEQ_LEN}")
    finite = np.isfinite(arr)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise SequenceFileError(
            f"{filename} has a non-finite value ({arr[r, c]}) at row {r + 1}, column {c + 1}: expected finite numbers"
        )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    big = ~np.isfinite(out)
    if big.any():
        r, c = np.argwhere(big)[0]
        raise SequenceFileError(
            f"{filename} has a value too large for float32 ({arr[r, c]:.3g}) at row {r + 1}, column {c + 1}: "
            f"expected |x| <= {float(np.finfo(np.float32).max):.3g}"
        )
    return torch.from_numpy(out)


def _parse_csv(text: str, filename: str, input_size: int) -> np.ndarray:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise SequenceFileError(f"{filename} has no data: expected rows of numbers, one row per time step")
    delim = max(",;\t", key=lines[0].count)
    if lines[0].count(delim) == 0:
        delim = "," if len(lines[0].split()) == 1 else " "
    if delim == " ":
        rows = [ln.split() for ln in lines]
    else:
        try:
            rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=delim)]
        except csv.Error as e:
            raise SequenceFileError(f"{filename} is not a readable CSV ({e}): expected rows of numbers") from None

    def number(s: str) -> float | None:
        try:
            return float(s) if s and "_" not in s else None
        except ValueError:
            return None

    first = [number(c) for c in rows[0]]
    start = 1 if all(v is None for v in first) and all(rows[0]) else 0  # a header: names only
    width = len(rows[start]) if start < len(rows) else len(rows[0])
    # Shape first, numbers after: a huge upload of the wrong shape is refused without parsing it.
    if len(rows) - start > MAX_SEQ_LEN:
        raise SequenceFileError(
            f"{filename} has {len(rows) - start} time steps: expected at most seq_len <= {MAX_SEQ_LEN}"
        )
    if width != input_size:
        raise SequenceFileError(
            f"the model expects input_size={input_size} columns, got {width} (in {filename}): expected one column per input"
        )
    out = np.empty((len(rows) - start, width), dtype=np.float64)
    for i, row in enumerate(rows[start:], start=start):
        if len(row) != width:
            raise SequenceFileError(
                f"{filename}: row {i + 1} has {len(row)} values, expected {width} like row {start + 1}"
            )
        for j, cell in enumerate(row):
            v = number(cell)
            if v is None:
                raise SequenceFileError(
                    f"{filename}: row {i + 1}, column {j + 1} is {cell[:20]!r}: expected a number"
                    + (" (only the first row may be a header of names)" if i > 0 else "")
                )
            out[i - start, j] = v
    return out


def load_sequence(data: bytes, filename: str, input_size: int) -> torch.Tensor:
    """An input sequence (T, input_size) float32 from a CSV (numbers, optional header row) or .npy file."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not 1 <= input_size <= MAX_INPUT:
        raise ValueError(f"input_size must be a whole number in [1, {MAX_INPUT}], got {input_size!r}")
    data, ext = _check_bytes(data, filename, SEQUENCE_EXTENSIONS, SequenceFileError)
    if ext == ".csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise SequenceFileError(
                f"{filename} is not UTF-8 text (byte {e.start}): expected a CSV of numbers"
            ) from None
        if "\x00" in text:
            raise SequenceFileError(f"{filename} contains NUL bytes: expected a CSV of numbers")
        return _finish_sequence(_parse_csv(text, filename, input_size), input_size, filename)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise SequenceFileError(
                f"{filename} holds Python objects (a pickled object array): refused, nothing was unpickled; "
                "expected a numeric array saved with numpy.save"
            ) from None
        raise SequenceFileError(f"{filename} is not a readable .npy file ({e}): expected numpy.save output") from None
    except Exception as e:
        raise SequenceFileError(
            f"{filename} is not a readable .npy file ({type(e).__name__}): expected numpy.save of a (T, {input_size}) array"
        ) from None
    if not isinstance(arr, np.ndarray):  # np.load returns an NpzFile for a zip archive
        raise SequenceFileError(f"{filename} is a .npz archive, not a .npy array: expected numpy.save output")
    if arr.dtype.kind not in "biuf":
        raise SequenceFileError(
            f"{filename} has dtype {arr.dtype}: expected real numbers (float or int), shape (T, {input_size})"
        )
    return _finish_sequence(arr.astype(np.float64, copy=False), input_size, filename)
