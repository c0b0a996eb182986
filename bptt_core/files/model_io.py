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

0. the zip is read by one strict reader (no data before the first entry or after the end records,
   no duplicate, overlapping or gapped entries, every local header equal to the central
   directory), decompressed within :data:`MAX_UNPACKED_BYTES` counted as it is read, and written
   out again as a stored copy, the only bytes torch.load ever sees (legacy, non-zip torch.save
   files and bare pickles are refused by name);
1. before anything is unpickled, the pickle program inside the archive (at most
   :data:`MAX_PICKLE_BYTES`) is *disassembled*
   (``pickletools.genops``, which only parses) and every global it would import is compared with
   the few a state_dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
   ``torch.*Storage`` ...); anything else (``os.system``, ``builtins.exec`` ...) is refused;
2. the copy is then read only by ``torch.load(..., weights_only=True)``, PyTorch's restricted
   unpickler, which refuses every global outside its own allowlist; what it returns is read through
   the types' own methods (a BUILD of allow-listed pieces may shadow a dict's ``items``), and every
   tensor is checked finite in float32, the dtype the analyses use.

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
import math
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

from bptt_core.config import (
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
from bptt_core.models.cells import NEW_CELLS
from bptt_core.models.recurrent import ElmanRNN, cell_kind

# A torch.save archive is stored, not compressed, so it expands to about its own size; twice the
# upload limit leaves room for re-zipped files and bounds what any reader may decompress.
MAX_UNPACKED_BYTES = 2 * MAX_UPLOAD_BYTES
MAX_ARCHIVE_ENTRIES = 10_000  # entries of a .pt archive, and tensors of a .safetensors header
MAX_PICKLE_BYTES = 2**20  # a state_dict's pickle program is ~100 bytes a tensor: 10 000 tensors fit
MAX_SAFETENSORS_HEADER = 2**20  # likewise, ~100 bytes of JSON a tensor
GATES = {1: "rnn", 4: "lstm", 3: "gru"}  # G, the number of gate blocks stacked in W_ih / W_hh
READOUT_NAMES = ("readout", "fc", "linear", "out", "output", "head", "decoder", "classifier")
SAVE_HOW = "torch.save(model.state_dict(), 'model.pt')"
PT_SAVE_HINT = f"expected a state_dict saved with {SAVE_HOW}"

# The only globals a state_dict's pickle needs; anything else is refused before unpickling.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),  # dtypes without a typed storage class (float8 ...)
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch.storage", "UntypedStorage"),
    ("torch", "Size"),
    ("torch", "device"),
    ("_codecs", "encode"),  # how protocol 2 pickles a bytes value: str -> bytes, nothing else
}
# torch.float8_e4m3fn, torch.float16 ...: dtype objects, which _rebuild_tensor_v3 takes
_DTYPE_NAMES = {n for n in dir(torch) if isinstance(getattr(torch, n, None), torch.dtype)}
_SAFETENSORS_DTYPES = (
    *("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ"),
    *("C64", "C128", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"),
)
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # a zip entry's local header (30 bytes), before name and extra
_EOCD_SIZE = 22  # the end-of-central-directory record, before its comment
_ZIP64_TAIL = 56 + 20  # the zip64 end record and its locator (torch.save writes both)
_CHUNK = 2**20  # bytes decompressed at a time
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
    if (module, name) in _SAFE_GLOBALS:
        return True
    return module == "torch" and (_STORAGE.fullmatch(name) is not None or name in _DTYPE_NAMES)


def _refuse_code(where: str, module: str, name: str) -> ModelFileError:
    return ModelFileError(
        f"refused: the file's pickle would import {module}.{name}, which is not part of a plain state_dict "
        f"({where}). Uploaded files are never unpickled into arbitrary objects, so nothing in it was run. "
        f"Expected a dict of tensors saved with {SAVE_HOW}, or a .safetensors file"
    )


def _refuse_archive(why: str) -> ModelFileError:
    return ModelFileError(
        f"refused: the .pt archive {why}, so two zip readers could read different files from it (nothing in it "
        f"was loaded); {PT_SAVE_HINT}"
    )


def _zip_tail(data: bytes, archive: zipfile.ZipFile) -> None:
    """No bytes before the first entry and nothing after the end records: the central directory
    starts where the entries end, the end-of-directory records follow it and end the file."""
    try:
        end = zipfile._EndRecData(io.BytesIO(data))
    except Exception:
        end = None
    if not end:
        raise ModelFileError(f"the .pt archive has no end-of-directory record (truncated or corrupt); {PT_SAVE_HINT}")
    size_cd, offset_cd, comment = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET], end[zipfile._ECD_COMMENT]
    if archive.start_dir != offset_cd:
        raise _refuse_archive(f"has {archive.start_dir - offset_cd} bytes of data before its first entry")
    records = _EOCD_SIZE + len(comment) + (_ZIP64_TAIL if end[zipfile._ECD_SIGNATURE] == b"PK\x06\x06" else 0)
    if offset_cd + size_cd + records != len(data):
        raise _refuse_archive("has data between or after its end-of-directory records")


def _check_layout(data: bytes, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Every entry's local header agrees with the central directory, and the entries tile the file
    from byte 0 to the central directory with no gap, overlap or duplicate name."""
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise _refuse_archive(f"names {dup!r} twice")
    _zip_tail(data, archive)
    pos = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset != pos:
            what = "overlap" if info.header_offset < pos else "have a gap between them"
            raise _refuse_archive(f"has entries that {what} (at byte {min(pos, info.header_offset)})")
        if pos + _LOCAL.size > len(data):
            raise _refuse_archive("ends inside a local header")
        sig, _, flag, method, _, _, crc, csize, usize, nlen, elen = _LOCAL.unpack_from(data, pos)
        raw = data[pos + _LOCAL.size : pos + _LOCAL.size + nlen]
        name = raw.decode("utf-8" if flag & 0x800 else "cp437", errors="replace")
        local = (sig, name, method, flag)
        if local != (0x04034B50, info.orig_filename, info.compress_type, info.flag_bits):
            raise _refuse_archive(
                f"has a local header for {info.orig_filename!r} that differs from its central directory"
            )
        pos += _LOCAL.size + nlen + elen + info.compress_size
        if flag & 0x08:  # sizes and CRC follow the data, in a data descriptor (torch.save writes one)
            if data[pos : pos + 4] == b"PK\x07\x08":
                pos += 4
            if pos + 12 > len(data):
                raise _refuse_archive("ends inside a data descriptor")
            crc, csize, usize = struct.unpack_from("<III", data, pos)
            pos += 12
        if (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size):
            raise _refuse_archive(f"gives {info.orig_filename!r} sizes or a CRC that differ from its central directory")
    if pos != archive.start_dir:
        raise _refuse_archive("has data between its last entry and its central directory")


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, out: zipfile.ZipFile, budget: list[int]) -> bytes:
    """Decompress one entry into ``out`` (stored), counting every byte against ``budget`` as it is read."""
    head = b""
    with archive.open(info) as src, out.open(info.filename, "w") as dst:
        while chunk := src.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise ModelFileError(
                    f"the .pt archive expands to more than {MAX_UNPACKED_BYTES / 2**20:.0f} MiB (the limit; reading "
                    f"stopped there): expected a state_dict of a model within the size limits"
                )
            if len(head) < MAX_PICKLE_BYTES + 1:
                head += chunk[: MAX_PICKLE_BYTES + 1 - len(head)]
            dst.write(chunk)
    return head


def _canonical_archive(data: bytes) -> tuple[io.BytesIO, bytes]:
    """(a fresh stored copy of the archive, its pickle program), after the zip-level checks.

    torch.load then reads only the copy written here, so the scan and the loader see the same
    entries byte for byte, and the decompressed-size budget holds whatever zip reader torch uses.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as e:  # BadZipFile, bad UTF-8 names, unsupported compression, ...
        raise ModelFileError(f"the .pt archive is truncated or corrupt ({type(e).__name__}); {PT_SAVE_HINT}") from None
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise ModelFileError(
            f"the .pt archive has {len(infos)} entries: expected a state_dict archive (at most {MAX_ARCHIVE_ENTRIES})"
        )
    _check_layout(data, archive, infos)
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ModelFileError(
            f"the .pt archive would expand to {unpacked / 2**20:.0f} MiB: the limit is "
            f"{MAX_UNPACKED_BYTES / 2**20:.0f} MiB; expected a state_dict of a model within the size limits"
        )
    pickles = [i for i in infos if i.filename.endswith("data.pkl")]
    if len(pickles) != 1:
        raise ModelFileError(f"the archive is not a torch.save file (no single data.pkl entry); {PT_SAVE_HINT}")
    if pickles[0].file_size > MAX_PICKLE_BYTES:
        raise _too_big_pickle(pickles[0].file_size)
    budget, program = [MAX_UNPACKED_BYTES], b""
    out = io.BytesIO()
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
            for info in infos:
                head = _copy_member(archive, info, copy, budget)
                if info is pickles[0]:
                    program = head
    except ModelFileError:
        raise
    except Exception as e:  # bad CRC, truncated deflate stream, ...
        raise ModelFileError(f"the .pt archive is corrupt ({type(e).__name__}); {PT_SAVE_HINT}") from None
    if len(program) > MAX_PICKLE_BYTES:
        raise _too_big_pickle(len(program))
    out.seek(0)
    return out, program  # the buffer itself: getvalue() would copy up to MAX_UNPACKED_BYTES


def _too_big_pickle(n: int) -> ModelFileError:
    return ModelFileError(
        f"the .pt file's pickle program is {n / 2**20:.1f} MiB: a state_dict's is a few KiB (the limit is "
        f"{MAX_PICKLE_BYTES / 2**20:.0f} MiB); {PT_SAVE_HINT}"
    )


def _scan_pickle(program: bytes) -> None:
    """The disassembly check of the pickle program: every global it would import is allow-listed."""
    try:
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
    if _looks_like_safetensors(data):
        raise ModelFileError("this looks like a safetensors file named .pt: expected a .safetensors extension for it")
    if data[:1] == b"\x80" or data[:2] == b"(d":  # a pickle: a bare one, or torch.save's legacy (pre-1.6) format
        raise ModelFileError(
            "refused: this is a bare pickle or a legacy (pre-1.6, _use_new_zipfile_serialization=False) torch.save "
            "file, which is not read here (nothing in it was run); expected a state_dict in torch.save's default zip "
            f"format: load it once in PyTorch and re-save it with {SAVE_HOW}, or save a .safetensors file"
        )
    if data[:4] != b"PK\x03\x04":
        raise ModelFileError(
            f"not a PyTorch file: torch.save writes a zip archive (starting with 'PK'), this starts with "
            f"{data[:4]!r}; {PT_SAVE_HINT}"
        )
    copy, program = _canonical_archive(data)
    _scan_pickle(program)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the verdict below says it all
            warnings.simplefilter("ignore")
            obj = torch.load(copy, weights_only=True, map_location="cpu")
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
    return _plain(obj)


class _Other:
    """Stands for a value of the file that is neither a tensor nor a dict (an epoch count, a config)."""

    def __init__(self, obj):
        self.kind = type(obj).__name__

    def __repr__(self) -> str:
        return f"<a {self.kind}>"


def _kind(obj) -> str:
    return obj.kind if isinstance(obj, _Other) else type(obj).__name__


def _plain_tensor(t: torch.Tensor) -> torch.Tensor:
    # Called through the class, never the instance: a pickle may give a tensor or parameter
    # instance attributes that shadow its methods (a parameter rebuilt "with state").
    return torch.Tensor.detach(t)


def _plain(obj, depth: int = 0):
    """Plain dicts of plain tensors from what torch.load returned, read through the types' own
    methods: a pickle made only of allow-listed pieces can still give an OrderedDict instance
    attributes named ``items`` or ``keys`` (a BUILD), which would shadow the methods the loader calls."""
    if isinstance(obj, torch.Tensor):
        return _plain_tensor(obj)
    if isinstance(obj, dict) and depth < 2:  # the state_dict, or one nested in a training checkpoint
        return {k if type(k) is str else _Other(k): _plain(v, depth + 1) for k, v in dict.items(obj)}
    return obj if type(obj) in (str, int, float, bool, type(None)) else _Other(obj)


def _safetensors_header(data: bytes) -> dict:
    """The JSON header, read and bounded before safetensors allocates anything."""
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_SAFETENSORS_HEADER:
        raise ModelFileError(
            f"the .safetensors header is {n / 2**20:.1f} MiB (the limit is {MAX_SAFETENSORS_HEADER / 2**20:.0f} MiB): "
            f"expected the header of a state_dict with at most {MAX_ARCHIVE_ENTRIES} tensors"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except Exception:
        raise ModelFileError(
            "not a valid .safetensors file (its header is not JSON): expected safetensors.torch.save_file(...)"
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError("not a valid .safetensors file (its header is not a JSON object)")
    if len(header) > MAX_ARCHIVE_ENTRIES + 1:
        raise ModelFileError(
            f"the .safetensors header lists {len(header) - 1} tensors: expected a state_dict with at most "
            f"{MAX_ARCHIVE_ENTRIES}"
        )
    for key, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) and key != "__metadata__" else None
        if isinstance(dtype, str) and dtype not in _SAFETENSORS_DTYPES:
            raise ModelFileError(
                f"tensor {key!r} of the .safetensors file has dtype {dtype}, which the explorer cannot read: "
                f"expected one of {', '.join(_SAFETENSORS_DTYPES)}"
            )
    return header


def _safetensors_load(data: bytes) -> tuple[dict, dict]:
    from safetensors.torch import load

    if len(data) < 8:
        raise ModelFileError("not a valid .safetensors file (shorter than 8 bytes): expected safetensors output")
    header = _safetensors_header(data)
    try:
        tensors = load(data)
    except Exception as e:
        raise ModelFileError(
            f"not a valid .safetensors file ({e}): expected safetensors.torch.save_file(model.state_dict(), path)"
        ) from None
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ModelFileError("the .safetensors __metadata__ is not a JSON object: expected string keys and values")
    return tensors, meta


# -- from a dict of tensors to a module ----------------------------------------------------------


# The diagonal cells (bptt_core.models.cells) by the parameter that only they have.
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
            f"not a state_dict: the file holds a {_kind(obj)}; expected a dict of parameter names to "
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
        raise ModelFileError(f"{key} is a {_kind(t)}: expected a tensor")
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
        _as_float32(f"{prefix}{key}", t)
    return cell, I, H, weights


def _as_float32(key: str, t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, the dtype the analyses use, checked finite after the conversion: a float64
    entry of 1e39 is finite in the file but inf in float32, and float8 has no isfinite of its own."""
    try:
        out = torch.Tensor.to(t, torch.float32)
    except Exception:
        raise ModelFileError(
            f"{key} has dtype {t.dtype}, which cannot be converted to float32: expected float16/bfloat16/float32/"
            "float64 or float8 weights"
        ) from None
    finite = torch.isfinite(out)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        big = t.dtype == torch.float64 and bool(torch.isfinite(t).all())
        why = "values too large for float32, |w| > 3.4e38" if big else "NaN/inf"
        raise ModelFileError(f"{key} has {bad} non-finite entries in float32 ({why}): expected finite weights")
    return out


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
        or not _finite_in_float32(w)
        or (b is not None and not _finite_in_float32(b))
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


def _finite_in_float32(t: torch.Tensor) -> bool:
    try:
        _as_float32("readout", t)
    except ModelFileError:
        return False
    return True


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
    try:
        return _load_model(data, filename, nonlinearity)
    except UploadError:
        raise
    except Exception as e:  # anything else a crafted file provokes: the documented message, never a traceback
        raise ModelFileError(
            f"the model file could not be read ({type(e).__name__}); nothing in it was run. {PT_SAVE_HINT.capitalize()}"
            ", or a .safetensors file"
        ) from None


def _load_model(data, filename, nonlinearity: str | None) -> LoadedModel:
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


# Characters str.splitlines() would also break a row at; a CSV row ends only at \n, \r\n or \r.
_OTHER_BREAKS = {
    "\x0b": "a vertical tab",
    "\x0c": "a form feed",
    "\x1c": "a file separator (U+001C)",
    "\x1d": "a group separator (U+001D)",
    "\x1e": "a record separator (U+001E)",
    "\x85": "a next-line character (NEL, U+0085)",
    "\u2028": "a Unicode line separator (U+2028)",
    "\u2029": "a Unicode paragraph separator (U+2029)",
}
_OTHER_BREAK = re.compile("[" + "".join(_OTHER_BREAKS) + "]")
_FILLED_LINE = re.compile(r"^[ \t]*[^ \t\n].*$", re.M)  # a line with something on it (after \r -> \n)
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")


def _csv_lines(text: str, filename: str) -> list[str]:
    """The non-blank lines, at most MAX_SEQ_LEN + 1 of them: the count is checked as they are found,
    so a tall file is refused without being split whole."""
    bad = _OTHER_BREAK.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise SequenceFileError(
            f"{filename} contains {_OTHER_BREAKS[bad.group()]} on line {line}: rows must end with a newline "
            "(\\n, \\r\\n or \\r) and hold only numbers and separators; remove it or save the file as plain CSV"
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for m in _FILLED_LINE.finditer(text):
        lines.append(m.group().strip())
        if len(lines) > MAX_SEQ_LEN + 1:  # a header row and MAX_SEQ_LEN steps fit; one more cannot
            raise SequenceFileError(
                f"{filename} has more than {MAX_SEQ_LEN} rows: expected at most seq_len <= {MAX_SEQ_LEN} time steps"
            )
    if not lines:
        raise SequenceFileError(f"{filename} has no data: expected rows of numbers, one row per time step")
    return lines


def _number(s: str) -> float | None:
    try:
        return float(s) if s and "_" not in s else None
    except ValueError:
        return None


def _split_row(line: str, delim: str, filename: str, row: int) -> list[str]:
    if delim == " ":
        return line.split()
    try:
        return [c.strip() for c in next(csv.reader([line], delimiter=delim))]
    except (csv.Error, StopIteration) as e:
        raise SequenceFileError(f"{filename}: row {row} is not readable CSV ({e}): expected numbers") from None


def _csv_dialect(first: str, input_size: int, filename: str) -> tuple[str, list[str]]:
    """(delimiter, the first row's cells), its width checked before anything else is split."""
    delim = max(";\t,", key=first.count)
    if first.count(delim) == 0:
        delim = " "
    # Quoted cells can only lower the count of separators, so a row with too few is refused unsplit.
    if delim != " " and first.count(delim) + 1 < input_size or first.count(delim) > 4 * MAX_INPUT:
        width = first.count(delim) + 1
    else:
        width = len(cells := _split_row(first, delim, filename, 1))
    if width != input_size:
        hint = ""
        if delim == "," and _DECIMAL_COMMA.fullmatch(first.replace(" ", "")):
            hint = (
                f" (row 1 reads {first[:20]!r}: if that is one number with a decimal comma, write it with a decimal "
                "point, 0.25, or separate the columns with ';' so that commas can be decimal marks)"
            )
        raise SequenceFileError(
            f"the model expects input_size={input_size} columns, got {width} (in {filename}): expected one column "
            f"per input{hint}"
        )
    return delim, cells


def _parse_csv(text: str, filename: str, input_size: int) -> np.ndarray:
    lines = _csv_lines(text, filename)
    delim, first = _csv_dialect(lines[0], input_size, filename)
    names = all(_number(c) is None and not _DECIMAL_COMMA.fullmatch(c) for c in first)
    start = 1 if names and all(first) else 0  # a header: names only
    if len(lines) - start > MAX_SEQ_LEN:
        raise SequenceFileError(
            f"{filename} has {len(lines) - start} time steps: expected at most seq_len <= {MAX_SEQ_LEN}"
        )
    rows = [_split_row(lines[i], delim, filename, i + 1) for i in range(start, len(lines))]
    # Decimal commas (0,25): in ';', tab or space separated rows, or quoted in comma-separated ones.
    comma = any(_DECIMAL_COMMA.fullmatch(c) for r in rows for c in r)
    out = np.empty((len(rows), input_size), dtype=np.float64)
    for i, row in enumerate(rows, start=start):
        if len(row) != input_size:
            raise SequenceFileError(
                f"{filename}: row {i + 1} has {len(row)} values, expected {input_size} like row {start + 1}"
            )
        for j, cell in enumerate(row):
            if comma and "." in cell:
                raise SequenceFileError(
                    f"{filename}: row {i + 1}, column {j + 1} is {cell[:20]!r}, but other cells use decimal commas "
                    "(0,25): expected one decimal mark throughout"
                )
            v = _number(cell.replace(",", ".") if comma else cell)
            if v is None:
                raise SequenceFileError(
                    f"{filename}: row {i + 1}, column {j + 1} is {cell[:20]!r}: expected a number"
                    + (" (only the first row may be a header of names)" if i > 0 else "")
                )
            out[i - start, j] = v
    return out


NPY_MAX_HEADER = 10_000  # numpy.load's own default max_header_size


def _npy_header_bytes(data: bytes) -> int:
    """The header length a .npy file declares (0 when it is not one; np.load then says why)."""
    if data[:6] != b"\x93NUMPY" or len(data) < 12:
        return 0
    return struct.unpack_from("<H" if data[6] == 1 else "<I", data, 8)[0]


def _check_npy_shape(data: bytes, filename: str, input_size: int) -> None:
    """The size the header declares, checked against the bytes that follow it before numpy allocates it
    (the shape itself is checked after loading, which this bounds by the file's size)."""
    from numpy.lib import format as npformat

    f = io.BytesIO(data)
    try:
        version = npformat.read_magic(f)
        read = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}.get(version)
        if read is None:
            return  # other versions: numpy.load's own checks
        shape, _, dtype = read(f, max_header_size=NPY_MAX_HEADER)
    except Exception:
        return  # not a valid header: numpy.load says why
    if dtype.hasobject:
        return  # a pickled object array: numpy.load refuses it, and that is said below
    # numpy allocates what the header declares before reading: never more than the file holds
    if math.prod(shape) * dtype.itemsize > len(data) - f.tell():
        raise SequenceFileError(
            f"{filename} is not a readable .npy file: it declares shape {shape} of {dtype} but holds fewer bytes "
            "(truncated); expected numpy.save output"
        )


def load_sequence(data: bytes, filename: str, input_size: int) -> torch.Tensor:
    """An input sequence (T, input_size) float32 from a CSV (numbers, optional header row) or .npy file."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not 1 <= input_size <= MAX_INPUT:
        raise ValueError(f"input_size must be a whole number in [1, {MAX_INPUT}], got {input_size!r}")
    try:
        return _load_sequence(data, filename, input_size)
    except UploadError:
        raise
    except Exception as e:  # anything else a crafted file provokes: the documented message, never a traceback
        raise SequenceFileError(
            f"the sequence file could not be read ({type(e).__name__}): expected a CSV of numbers or numpy.save "
            f"output, shape (T, {input_size})"
        ) from None


def _load_sequence(data, filename, input_size: int) -> torch.Tensor:
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
    header = _npy_header_bytes(data)
    if header > NPY_MAX_HEADER:
        raise SequenceFileError(
            f"{filename} has a {header}-byte .npy header: numpy reads headers of at most {NPY_MAX_HEADER} bytes "
            f"(numpy.save writes ~128); expected numpy.save output of a (T, {input_size}) array"
        )
    _check_npy_shape(data, filename, input_size)
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
