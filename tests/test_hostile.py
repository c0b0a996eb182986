"""The fuzz and attack suite of issue 11: crafted uploads, hostile library calls, memory ceilings.

Every crafted file is made here, by the test, from a real ``torch.save`` / ``safetensors`` /
``numpy.save`` output changed in one documented way; nothing opaque is checked in. Each class
named in the issue has a test that failed before its fix (the finding number is in the name).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save
from torch import nn
from torch.nn.utils import parametrizations, prune

import bptt_core.files.model_io as mio
from bptt_core import (
    bptt_gradients,
    contributions,
    jacobian_log_norms,
    lyapunov_exponents,
    rtrl_gradients,
    spectrum,
    tbptt_gradients,
)
from bptt_core.cli.main import main
from bptt_core.files.model_io import ModelFileError, SequenceFileError, load_model, load_sequence
from bptt_core.models.recurrent import ElmanRNN
from tests.test_jacobians import assert_L_close, reference_L

pytestmark = pytest.mark.filterwarnings("ignore:Complex modules:UserWarning")  # the complex modules are refused

ROOT = Path(__file__).resolve().parents[1]
I, H = 3, 4


def torch_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def rnn_sd(cell=nn.RNN) -> dict:
    torch.manual_seed(0)
    return dict(cell(I, H).state_dict())


GOOD = torch_bytes(rnn_sd())


def rezip(entries: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():  # duplicate names warn; that is the point of one test
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(out, "w", compression) as z:
            for name, body in entries:
                z.writestr(name, body)
    return out.getvalue()


def members(data: bytes) -> list[tuple[str, bytes]]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return [(i.filename, z.read(i)) for i in z.infolist()]


# -- finding 3: files made only of allowed pieces ------------------------------------------------


class PoisonedOrderedDict:
    """Pickles as collections.OrderedDict (allow-listed) plus a BUILD whose state shadows its methods."""

    def __init__(self, sd, state):
        self.sd, self.state = sd, state

    def __reduce__(self):
        return (OrderedDict, (), self.state, None, iter(self.sd.items()))


def test_finding3_build_on_an_ordered_dict_loads_cleanly():
    data = torch_bytes(PoisonedOrderedDict(rnn_sd(), {"items": 5, "keys": 3, "get": 1, "values": 0}))
    assert "'int' object" in repr(_raw_torch_load_error(data))  # control: torch hands back a poisoned dict
    loaded = load_model(data, "m.pt")
    assert (loaded.cell, loaded.hidden_size) == ("rnn", H)


def _raw_torch_load_error(data: bytes):
    obj = torch.load(io.BytesIO(data), weights_only=True)
    try:
        obj.items()
    except TypeError as e:
        return e
    return None


def test_finding3_parameter_rebuilt_with_state_loads_cleanly():
    sd = rnn_sd()
    want = sd["weight_hh_l0"].clone()
    p = nn.Parameter(want.clone())
    p.dim, p.detach, p.to, p.shape_ = 5, 4, 1, 0  # instance attributes shadowing tensor methods
    sd["weight_hh_l0"] = p
    data = torch_bytes(sd)
    raw = torch.load(io.BytesIO(data), weights_only=True)["weight_hh_l0"]
    with pytest.raises(TypeError):  # control: the loaded parameter's methods are shadowed
        raw.dim()
    loaded = load_model(data, "m.pt")
    assert torch.equal(loaded.module.weight_hh_l0.detach(), want)


def test_finding3_any_exception_while_loading_is_the_documented_message(monkeypatch):
    def broken(*a, **k):
        raise TypeError("/srv/app/secret/path.py line 3")

    monkeypatch.setattr(mio, "model_from_state_dict", broken)
    with pytest.raises(ModelFileError) as err:
        load_model(GOOD, "m.pt")
    assert "could not be read (TypeError)" in str(err.value) and "/srv" not in str(err.value)
    monkeypatch.setattr(mio, "_parse_csv", broken)
    with pytest.raises(SequenceFileError, match=r"could not be read \(TypeError\)"):
        load_sequence(b"1,2\n", "x.csv", 2)


def test_finding3_cli_exits_2_with_the_message(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "m.pt"
    gru = torch_bytes(rnn_sd(nn.GRU))
    bad.write_bytes(gru + GOOD)  # two archives, one behind the other (finding 5): refused
    rc = main(["jacobian", "--model", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and f"refused: the .pt archive has {len(gru)} bytes of data before its first entry" in err
    assert "Traceback" not in err

    def broken(*a, **k):
        raise TypeError("boom")

    monkeypatch.setattr(mio, "model_from_state_dict", broken)
    bad.write_bytes(GOOD)
    assert main(["jacobian", "--model", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "could not be read (TypeError)" in capsys.readouterr().err


FP8 = [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz]


@pytest.mark.parametrize("fmt", ["m.pt", "m.safetensors"])
@pytest.mark.parametrize("dtype", FP8, ids=str)
def test_finding3_fp8_checkpoints_are_converted(dtype, fmt):
    sd = {k: v.to(dtype).contiguous() for k, v in rnn_sd(nn.GRU).items()}
    data = torch_bytes(sd) if fmt == "m.pt" else st_save(sd)
    loaded = load_model(data, fmt)
    assert loaded.cell == "gru" and f"converted from {str(dtype)[6:]} to float32" in " ".join(loaded.notes)
    assert torch.equal(loaded.module.weight_hh_l0.detach(), sd["weight_hh_l0"].to(torch.float32))


def test_finding3_fp8_nan_is_caught_after_conversion():
    sd = {k: v.to(torch.float8_e4m3fn) for k, v in rnn_sd().items()}
    sd["weight_hh_l0"][0, 0] = float("nan")
    with pytest.raises(ModelFileError, match=r"weight_hh_l0 has 1 non-finite entries in float32 \(NaN/inf\)"):
        load_model(torch_bytes(sd), "m.pt")


# -- finding 4: checked in the dtype it will be used in -----------------------------------------


@pytest.mark.parametrize("fmt", ["m.pt", "m.safetensors"])
def test_finding4_float64_weight_overflowing_float32_is_refused(fmt):
    sd = {k: v.double() for k, v in rnn_sd().items()}
    sd["weight_hh_l0"][1, 2] = 1e39  # finite in float64, inf in float32
    data = torch_bytes(sd) if fmt == "m.pt" else st_save(sd)
    with pytest.raises(ModelFileError, match=r"weight_hh_l0 has 1 non-finite entries in float32 \(values too large"):
        load_model(data, fmt)


def test_finding4_overflowing_readout_is_not_used():
    sd = {f"rnn.{k}": v for k, v in rnn_sd().items()}
    sd["readout.weight"] = torch.full((2, H), 1e39, dtype=torch.float64)
    loaded = load_model(torch_bytes(sd), "m.pt")
    assert loaded.readout is None and any("no readout used" in n for n in loaded.notes)


# -- finding 5: two zip readers must not disagree -------------------------------------------------


@pytest.mark.parametrize("lead", [b"JUNK" * 100, b"PK\x03\x04" + bytes(396)], ids=["junk", "a zip signature"])
def test_finding5_data_before_the_zip_is_refused(lead):
    assert zipfile.ZipFile(io.BytesIO(lead + GOOD)).testzip() is None  # control: zipfile reads it
    with pytest.raises(ModelFileError, match=r"(400 bytes of data before its first entry|not a PyTorch file)"):
        load_model(lead + GOOD, "m.pt")


def test_finding5_a_zip_appended_to_another_is_refused():
    """The issue's case: a GRU archive placed in front of an RNN archive; one reader sees each."""
    gru = torch_bytes(rnn_sd(nn.GRU))
    with pytest.raises(ModelFileError, match="refused: the .pt archive"):
        load_model(gru + GOOD, "m.pt")


def test_finding5_duplicate_member_is_refused():
    entries = members(GOOD)
    pkl = next(e for e in entries if e[0].endswith("data.pkl"))
    data = rezip([*entries, pkl])
    with pytest.raises(ModelFileError, match="names 'archive/data.pkl' twice"):
        load_model(data, "m.pt")


def test_finding5_local_header_that_disagrees_with_the_directory_is_refused():
    data = bytearray(GOOD)
    name = b"archive/data/0"
    i = data.index(name)  # the first occurrence is the local header (the directory comes last)
    assert i < zipfile.ZipFile(io.BytesIO(GOOD)).start_dir
    data[i : i + len(name)] = b"archive/data/9"
    with pytest.raises(ModelFileError, match="local header for 'archive/data/0' that differs"):
        load_model(bytes(data), "m.pt")


def test_finding5_overlapping_members_are_refused():
    """Two directory entries pointing at one local header (a member read twice under two names)."""
    data = bytearray(GOOD)
    z = zipfile.ZipFile(io.BytesIO(GOOD))
    a, b = z.getinfo("archive/data/0"), z.getinfo("archive/data/1")
    cd = z.start_dir
    j = data.index(b"PK\x01\x02", cd)  # walk the central directory to data/1's entry
    while True:
        n, m, k = struct.unpack_from("<HHH", data, j + 28)
        if data[j + 46 : j + 46 + n] == b"archive/data/1":
            struct.pack_into("<I", data, j + 42, a.header_offset)  # its local header offset -> data/0's
            break
        j += 46 + n + m + k
    assert b.header_offset != a.header_offset
    with pytest.raises(ModelFileError, match="refused: the .pt archive"):
        load_model(bytes(data), "m.pt")


def test_finding5_trailing_data_is_refused():
    with pytest.raises(ModelFileError, match="after its end-of-directory records"):
        load_model(GOOD + b"tail", "m.pt")


def test_finding5_torch_reads_only_the_checked_copy(monkeypatch):
    """torch.load is handed the stored copy the checks wrote, never the upload's own zip."""
    seen = []
    real = torch.load

    def spy(f, *a, **k):
        data = f.getvalue()
        seen.append(data)
        return real(io.BytesIO(data), *a, **k)

    monkeypatch.setattr(torch, "load", spy)
    deflated = rezip(members(GOOD), zipfile.ZIP_DEFLATED)
    assert load_model(deflated, "m.pt").cell == "rnn"
    z = zipfile.ZipFile(io.BytesIO(seen[0]))
    assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    assert sorted(z.namelist()) == sorted(n for n, _ in members(GOOD))


def test_finding5_a_directory_that_understates_a_size_is_refused(monkeypatch):
    """The issue's 572 MiB record: the directory says small, the deflate stream says huge. Reading is
    cut at the stated size (so the budget holds while reading) and the CRC gives the lie away."""
    entries = members(GOOD) + [("archive/data/99", bytes(8 * 2**20))]
    data = bytearray(rezip(entries, zipfile.ZIP_DEFLATED))
    z = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = z.getinfo("archive/data/99")
    struct.pack_into("<I", data, info.header_offset + 22, 1000)  # local header: uncompressed size
    cd = bytes(data).index(b"archive/data/99", z.start_dir) - 46
    struct.pack_into("<I", data, cd + 24, 1000)  # central directory: uncompressed size
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bytes(data), "m.pt")


def test_finding5_budget_is_counted_while_reading(monkeypatch):
    """Even if the directory's sizes were believed, no more than the budget is ever decompressed."""
    monkeypatch.setattr(mio, "MAX_UNPACKED_BYTES", 2**20)
    entries = members(GOOD) + [("archive/data/99", bytes(4 * 2**20))]
    data = rezip(entries, zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(mio, "_check_layout", lambda *a: None)
    real = zipfile.ZipFile.infolist

    def understated(self):  # what a lying directory would report
        infos = real(self)
        for i in infos:
            i.file_size = min(i.file_size, 1000)
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", understated)
    with pytest.raises(ModelFileError, match=r"(expands to more than 1 MiB|corrupt)"):
        load_model(data, "m.pt")


@pytest.mark.parametrize("how", ["legacy", "bare pickle"])
def test_finding5_legacy_and_bare_pickles_are_refused_by_name(how):
    data = torch_bytes(rnn_sd(), _use_new_zipfile_serialization=False) if how == "legacy" else pickle.dumps(rnn_sd())
    with pytest.raises(ModelFileError, match="bare pickle or a legacy"):
        load_model(data, "m.pt")


# -- finding 6: blow-ups within the size limit ---------------------------------------------------


def deflated_pickle_bomb(mib: int) -> bytes:
    program = b"\x80\x02]q\x00(" + b"K\x00" * (mib * 2**19) + b"e."  # a list of zeros, a valid pickle
    return rezip([*(e for e in members(GOOD) if not e[0].endswith("data.pkl")), ("archive/data.pkl", program)], 8)


def test_finding6_deflated_pickle_bomb_is_refused_before_scanning(monkeypatch):
    data = deflated_pickle_bomb(16)
    assert len(data) < 200 * 2**10
    monkeypatch.setattr(mio, "_pickle_globals", lambda p: pytest.fail("a 16 MiB pickle was disassembled"))
    with pytest.raises(ModelFileError, match=r"pickle program is 16.0 MiB: a state_dict's is a few KiB"):
        load_model(data, "m.pt")


def tall_csv(mib: int = 49) -> bytes:
    return b"0.5\n" * (mib * 2**18)


def test_finding6_tall_csv_is_refused_while_reading(monkeypatch):
    import bptt_core.files.model_io as m

    calls = []
    real = m._split_row
    monkeypatch.setattr(m, "_split_row", lambda *a: calls.append(1) or real(*a))
    with pytest.raises(SequenceFileError, match="more than 2000 rows"):
        load_sequence(tall_csv(), "x.csv", 1)
    assert len(calls) <= 1  # no row was split beyond the first


def test_finding6_wide_csv_row_is_refused_before_splitting():
    with pytest.raises(SequenceFileError, match="expects input_size=2 columns, got 5000001"):
        load_sequence(b"1," * 5_000_000 + b"1\n", "x.csv", 2)


def safetensors_header_bomb(n: int = 700_000) -> bytes:
    header = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)})
    return struct.pack("<Q", len(header)) + header.encode()


def test_finding6_safetensors_with_700000_empty_tensors_is_refused_from_its_header(monkeypatch):
    data = safetensors_header_bomb()
    assert len(data) <= mio.MAX_UPLOAD_BYTES
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "load", lambda b: pytest.fail("safetensors parsed the bomb"))
    with pytest.raises(ModelFileError, match=r"the .safetensors header is \d+\.\d MiB"):
        load_model(data, "m.safetensors")


# -- finding 4 (CSV) and 8a: inputs read as meant ------------------------------------------------


@pytest.mark.parametrize(
    "text, size, want",
    [
        ("a;b\n0,25;1,5\n-0,5;2\n", 2, [[0.25, 1.5], [-0.5, 2.0]]),
        ("0,25\t1\n2,5e-1\t3\n", 2, [[0.25, 1.0], [0.25, 3.0]]),
        ('"0,25","1,0"\n', 2, [[0.25, 1.0]]),
        ("1 2\r3 4\r", 2, [[1, 2], [3, 4]]),
        ("0.5;1\n", 2, [[0.5, 1.0]]),
    ],
)
def test_finding4_csv_dialects_are_read_as_meant(text, size, want):
    assert load_sequence(text.encode(), "x.csv", size).tolist() == want


def test_finding4_unquoted_decimal_comma_is_refused_with_the_reason():
    with pytest.raises(SequenceFileError, match=r"got 2 .*decimal comma"):
        load_sequence(b"0,25\n0,5\n", "x.csv", 1)


@pytest.mark.parametrize(
    "sep, name", [("\x85", "NEL"), ("\u2028", "U\\+2028"), ("\x0c", "form feed"), ("\x0b", "vertical tab")]
)
def test_finding4_unicode_line_separators_are_refused_by_name(sep, name):
    with pytest.raises(SequenceFileError, match=f"{name}.* on line 2"):
        load_sequence(f"1,2\n3,4{sep}5,6\n".encode(), "x.csv", 2)


def npy_declaring(shape, body: bytes = bytes(800)) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header = (header + " " * (118 - len(header)) + "\n").encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


def test_finding6_npy_declaring_a_huge_array_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("numpy.load reached"))
    with pytest.raises(
        SequenceFileError, match=r"it declares shape \(2000, 1000000\) of float64 but holds fewer bytes"
    ):
        load_sequence(npy_declaring((2000, 10**6)), "x.npy", 2)


def test_finding8a_big_npy_header_is_named_as_such():
    body = np.zeros((3, 2)).tobytes()
    header = ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }" + " " * 12_000 + "\n").encode()
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body
    with pytest.raises(SequenceFileError) as err:
        load_sequence(data, "x.npy", 2)
    assert "-byte .npy header" in str(err.value) and "pickle" not in str(err.value)


# -- memory ceiling: every crafted class, loaded in a child process -------------------------------

# Peak resident memory one upload may add while it is loaded or refused (README, "Your own model").
# Measured: +104 MiB for a valid 48 MiB checkpoint (the checked stored copy and torch's tensors),
# +107 MiB for a valid archive with a deflated 99 MiB record, +96 MiB for a 49 MiB one-row CSV,
# under +3 MiB for every archive refused from its directory or header.
UPLOAD_MEMORY_CEILING_MIB = 256


def big_valid_checkpoint() -> bytes:
    sd = rnn_sd(nn.LSTM)
    sd["optimizer_state"] = torch.zeros(12 * 2**20)  # 48 MiB beside the layer: a valid, maximal upload
    return torch_bytes(sd)


def deflated_record(mib: int) -> bytes:
    return rezip(members(GOOD) + [("archive/data/99", bytes(mib * 2**20))], zipfile.ZIP_DEFLATED)


CRAFTED = {
    "valid 48 MiB checkpoint": (big_valid_checkpoint, "m.pt"),
    "deflated 181 MiB pickle": (lambda: deflated_pickle_bomb(181), "m.pt"),
    "deflated 90 MiB pickle (within the budget)": (lambda: deflated_pickle_bomb(90), "m.pt"),
    "valid archive with a deflated 99 MiB record": (lambda: deflated_record(99), "m.pt"),  # within the budget
    "deflated 572 MiB record": (lambda: deflated_record(572), "m.pt"),
    "GRU archive before an RNN archive": (lambda: torch_bytes(rnn_sd(nn.GRU)) + GOOD, "m.pt"),
    "legacy torch.save": (lambda: torch_bytes(rnn_sd(), _use_new_zipfile_serialization=False), "m.pt"),
    "700 000 empty safetensors": (safetensors_header_bomb, "m.safetensors"),
    ".npy declaring 16 GB": (lambda: npy_declaring((2000, 10**6)), "x.npy"),
    "49 MiB tall CSV": (tall_csv, "x.csv"),
    "49 MiB one-row CSV": (lambda: b"1," * (24 * 2**20) + b"1\n", "x.csv"),
}

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    import torch
    torch.set_num_threads(1)
    from bptt_core.files.model_io import UploadError, load_model, load_sequence
    for path in sys.argv[1:]:
        data = open(path, "rb").read()
        pid = os.fork()
        if pid == 0:
            # a safety net: a regression fails this test instead of the machine (4 GiB of address space more)
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            vm = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            resource.setrlimit(resource.RLIMIT_AS, (vm + 4 * 2**30, hard))
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                if path.endswith((".csv", ".npy")):
                    load_sequence(data, "x" + path[-4:], 1)
                else:
                    load_model(data, os.path.basename(path))
                outcome = "loaded"
            except UploadError as e:
                outcome = str(e)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(json.dumps({"path": path, "mib": (after - before) / 1024, "outcome": outcome}), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
    """
)


@pytest.mark.slow
def test_memory_ceiling_of_every_crafted_upload(tmp_path):
    paths = []
    for i, (name, (make, fname)) in enumerate(CRAFTED.items()):
        data = make()
        assert len(data) <= mio.MAX_UPLOAD_BYTES, name
        p = tmp_path / f"{i}{Path(fname).suffix}"
        p.write_bytes(data)
        paths.append(str(p))
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, cwd=ROOT, timeout=600, check=False
    )
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == len(CRAFTED), run.stderr[-2000:]
    for name, row in zip(CRAFTED, rows, strict=True):
        print(f"{name}: +{row['mib']:.0f} MiB, {row['outcome'][:60]}")
        assert row["mib"] <= UPLOAD_MEMORY_CEILING_MIB, (name, row)
        assert "could not be read" not in row["outcome"], (name, row)  # a known refusal, not a crash
        assert (row["outcome"] == "loaded") == name.startswith("valid"), (name, row)


# -- finding 7 (and 4): the library, with parametrized modules and hostile arguments ------------

PARAMETRIZE = {
    "orthogonal": lambda m: parametrizations.orthogonal(m, "weight_hh_l0"),
    "weight_norm": lambda m: parametrizations.weight_norm(m, "weight_hh_l0"),
    "spectral_norm": lambda m: parametrizations.spectral_norm(m, "weight_hh_l0"),
    "pruned": lambda m: prune.l1_unstructured(m, "weight_hh_l0", amount=0.5),
    "old spectral_norm": lambda m: torch.nn.utils.spectral_norm(m, "weight_hh_l0"),
}
CELLS = {
    "nn.RNN": lambda: nn.RNN(I, H),
    "ElmanRNN-sigmoid": lambda: ElmanRNN(I, H, "sigmoid"),
    "nn.LSTM": lambda: nn.LSTM(I, H),
    "nn.GRU": lambda: nn.GRU(I, H),
}


def constrained(cell: str, how: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = CELLS[cell]().double()
    if how == "orthogonal" and cell in ("nn.LSTM", "nn.GRU"):  # (G*H, H) is not square: weight_norm instead
        how = "weight_norm"
    PARAMETRIZE[how](m)
    if how == "old spectral_norm":  # its power iteration runs once per training-mode forward, as in training
        for _ in range(30):
            m(torch.zeros(1, I, dtype=torch.float64))
    return m.eval()


@pytest.mark.parametrize("how", PARAMETRIZE)
@pytest.mark.parametrize("cell", CELLS)
def test_finding7_constrained_modules_match_autograd(cell, how):
    m = constrained(cell, how)
    x = torch.randn(5, I, dtype=torch.float64)
    assert_L_close(jacobian_log_norms(m, x, norm=2), reference_L(m, x, 2), atol=1e-9)
    readout = nn.Linear(H, 2).double()
    y = torch.randn(5, 2, dtype=torch.float64)
    ref = bptt_gradients(m, readout, x, y)  # autograd through the module's own forward
    for got in (rtrl_gradients(m, readout, x, y), tbptt_gradients(m, readout, x, y, 5, 5)):
        assert len(got) == len(ref)
        for g, r in zip(got, ref, strict=True):
            torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)
    assert not np.isnan(lyapunov_exponents(m, x)).any()
    if cell in ("nn.RNN", "ElmanRNN-sigmoid") and "spectral" in how:
        assert abs(spectrum(m).sigma1 - 1) < 1e-3  # the constraint is what the spectrum page shows


@pytest.mark.parametrize("how", PARAMETRIZE)
@pytest.mark.parametrize("cell", CELLS)
def test_finding7_contributions_of_constrained_modules_are_those_of_their_effective_weights(cell, how):
    m = constrained(cell, how)
    plain = CELLS[cell]().double()
    with torch.no_grad():
        for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(plain, k).copy_(getattr(m, k))
    readout = nn.Linear(H, 2).double()
    x, y = torch.randn(5, I, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    before = [q.detach().clone() for q in m.parameters()]
    for param in ("weight_hh_l0", "weight_ih_l0"):
        got = contributions(m, readout, x, y, 4, param)
        assert got.abs().max() > 0
        torch.testing.assert_close(got, contributions(plain, readout, x, y, 4, param), rtol=1e-9, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))  # left as it was
    assert "weight_hh_l0" not in dict(m.named_parameters())


def test_finding7_orthogonal_rnn_has_unit_spectral_norm_at_every_lag():
    torch.manual_seed(1)
    m = ElmanRNN(I, H, "linear").double()
    parametrizations.orthogonal(m, "weight_hh_l0")
    L = jacobian_log_norms(m, torch.randn(8, I, dtype=torch.float64), norm=2)
    np.testing.assert_allclose(L[np.tril_indices(8)], 0.0, atol=1e-12)


def meta_rnn():
    with torch.device("meta"):
        return nn.RNN(I, H)


GOOD_X = torch.randn(4, I)
BAD_CALLS = {
    "meta-device module": lambda: jacobian_log_norms(meta_rnn(), GOOD_X),
    "x=None": lambda: jacobian_log_norms(nn.RNN(I, H), None),
    "x a string": lambda: jacobian_log_norms(nn.RNN(I, H), "1,2,3"),
    "x an object array": lambda: jacobian_log_norms(nn.RNN(I, H), np.array([[1, "a", None]] * 4, dtype=object)),
    "x complex": lambda: jacobian_log_norms(nn.RNN(I, H), torch.randn(4, I, dtype=torch.complex64)),
    "x overflowing float32": lambda: tbptt_gradients(
        nn.RNN(I, H), nn.Linear(H, 1), torch.full((4, I), 1e39, dtype=torch.float64), torch.zeros(4, 1), 2, 2
    ),
    "complex module": lambda: jacobian_log_norms(nn.RNN(I, H).to(torch.complex64), GOOD_X),
    "complex h0": lambda: jacobian_log_norms(nn.RNN(I, H), GOOD_X, h0=torch.ones(H, dtype=torch.complex128)),
    "nan h0": lambda: jacobian_log_norms(nn.RNN(I, H), GOOD_X, h0=torch.full((H,), float("nan"))),
    "inf h0": lambda: jacobian_log_norms(nn.LSTM(I, H), GOOD_X, h0=torch.full((2 * H,), float("inf"))),
    "dtype int64": lambda: jacobian_log_norms(nn.RNN(I, H), GOOD_X, dtype=torch.int64),
    "dtype 'float32'": lambda: jacobian_log_norms(nn.RNN(I, H), GOOD_X, dtype="float32"),
    "dtype float16, spectral": lambda: jacobian_log_norms(nn.RNN(I, H), GOOD_X, norm=2, dtype=torch.float16),
    "dtype float16, chain": lambda: jacobian_log_norms(nn.RNN(I, H), GOOD_X, dtype=torch.float16, method="chain"),
    "loss_mask a string": lambda: tbptt_gradients(
        nn.RNN(I, H), nn.Linear(H, 1), GOOD_X, torch.zeros(4, 1), 2, 2, loss_mask="1010"
    ),
    "readout complex": lambda: bptt_gradients(
        nn.RNN(I, H), nn.Linear(H, 1).to(torch.complex64), GOOD_X, torch.zeros(4, 1)
    ),
    "rnn not a module": lambda: rtrl_gradients("rnn", nn.Linear(H, 1), GOOD_X, torch.zeros(4, 1)),
}
ARGUMENT = {
    "meta-device module": "rnn",
    "complex module": "rnn",
    "rnn not a module": "rnn",
    "readout complex": "readout",
    "loss_mask a string": "loss_mask",
    "x overflowing float32": "x",
    "complex h0": "h0",
    "nan h0": "h0",
    "inf h0": "h0",
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_finding7_bad_arguments_get_a_value_error_naming_them(case):
    with pytest.raises(ValueError) as err:
        BAD_CALLS[case]()
    name = ARGUMENT.get(case, case.split()[0].split("=")[0])
    assert name in str(err.value), str(err.value)


@pytest.mark.parametrize("norm", ["fro", 2])
def test_finding4_float16_module_chain_is_exact(norm):
    """A float16 module is analysed in float64 from its (exactly representable) weights."""
    torch.manual_seed(2)
    m = nn.RNN(I, H).half()
    x = torch.randn(30, I)
    ref = reference_L(m.double(), x.double(), norm)
    m.half()
    assert_L_close(jacobian_log_norms(m, x, norm=norm, method="chain"), ref, atol=1e-5)


# Hypothesis: every argument of the public functions, hostile or not; only ValueError (or success).

VALUES = st.sampled_from(
    [
        None,
        "x",
        b"\x00",
        3,
        2.5,
        float("nan"),
        [1, 2],
        {"a": 1},
        np.array([[1, "a"]], dtype=object),
        np.full((4, I), np.nan),
        np.full((4, I), 1e39),
        torch.zeros(4, I, dtype=torch.complex64),
        torch.zeros(4, I, dtype=torch.int64),
        torch.zeros(4, I, dtype=torch.float16),
        torch.zeros(4, I, dtype=torch.float8_e4m3fn),
        torch.zeros(4, I, device="meta"),
        torch.zeros(4, I).to_sparse(),
        torch.zeros(4, 7),
        torch.zeros(0, I),
        torch.zeros(4, 1, I),
        torch.randn(4, I),
    ]
)
MODULES = st.sampled_from(
    [
        ("nn.RNN", None),
        ("nn.LSTM", None),
        ("nn.GRU", None),
        ("ElmanRNN-sigmoid", None),
        ("nn.RNN", "orthogonal"),
        ("nn.GRU", "pruned"),
        ("nn.LSTM", "old spectral_norm"),
        ("nn.RNN", "spectral_norm"),
        ("meta", None),
        ("complex", None),
        ("float16", None),
        ("not a module", None),
    ]
)


def module_from(spec):
    cell, how = spec
    if cell == "meta":
        return meta_rnn()
    if cell == "complex":
        return nn.RNN(I, H).to(torch.complex64)
    if cell == "float16":
        return nn.RNN(I, H).half()
    if cell == "not a module":
        return np.eye(3)
    m = CELLS[cell]()
    if how:
        PARAMETRIZE[how](m)
    return m


FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def only_value_errors(fn):
    try:
        fn()
    except ValueError:
        pass


@FUZZ
@given(
    MODULES,
    VALUES,
    st.one_of(st.none(), VALUES),
    st.sampled_from(["fro", 2, 1, "nuc", None, "2"]),
    st.sampled_from(["h", "c", "x", 0]),
    st.sampled_from([None, torch.float32, torch.float64, torch.float16, torch.int64, "float32", torch.complex64]),
    st.sampled_from([None, "chain", "split", "fast"]),
)
def test_fuzz_jacobian_log_norms(spec, x, h0, norm, block, dtype, method):
    only_value_errors(lambda: jacobian_log_norms(module_from(spec), x, h0, norm, block, dtype, method))


@FUZZ
@given(
    MODULES,
    st.sampled_from(["linear", "complex", "wide", "float64", "not linear"]),
    VALUES,
    VALUES,
    st.sampled_from([1, 2, 4, 0, -1, 2.5, "2", None, 10**9]),
    st.sampled_from([1, 3, 0, None, "a"]),
    st.sampled_from(
        [None, "1010", [True, False, True, True], np.ones(4), np.zeros(4), [1, 2], torch.ones(4) * float("nan")]
    ),
)
def test_fuzz_gradients(spec, ro, x, y, k1, k2, mask):
    readout = {
        "linear": lambda: nn.Linear(H, I),
        "complex": lambda: nn.Linear(H, I).to(torch.complex64),
        "wide": lambda: nn.Linear(H + 1, I),
        "float64": lambda: nn.Linear(H, I).double(),
        "not linear": lambda: nn.Tanh(),
    }[ro]()
    rnn = module_from(spec)
    only_value_errors(lambda: tbptt_gradients(rnn, readout, x, y, k1, k2, mask))
    only_value_errors(lambda: rtrl_gradients(rnn, readout, x, y, mask))
    only_value_errors(lambda: bptt_gradients(rnn, readout, x, y, mask))
    only_value_errors(lambda: contributions(rnn, readout, x, y, k2, "weight_hh_l0"))


@FUZZ
@given(MODULES, VALUES, st.one_of(st.none(), VALUES), st.sampled_from([None, 1, 0, 99, "2", 1.5]))
def test_fuzz_spectra(spec, x, h0, n):
    rnn = module_from(spec)
    only_value_errors(lambda: spectrum(rnn))
    only_value_errors(lambda: lyapunov_exponents(rnn, x, h0, n))


@FUZZ
@given(
    st.sampled_from(["rnn", "lstm", "gru", "RNN", 1, None]),
    *(st.sampled_from([1, 4, 0, -3, 2.5, "4", None, True, float("nan"), 10**12]) for _ in range(5)),
    st.sampled_from(
        [{}, {"lr": float("inf")}, {"truncation": 0}, {"gain": "big"}, {"activation": "swish"}, {"init": 3}]
    ),
)
def test_fuzz_estimate(cell, input_size, hidden_size, output_size, seq_len, batch_size, more):
    from bptt_core import estimate

    only_value_errors(
        lambda: estimate(cell, input_size, hidden_size, output_size, seq_len, batch_size, measure_time=False, **more)
    )


# -- the page: crafted uploads give the documented message, never an exception box --------------


def test_crafted_uploads_on_the_page():
    from streamlit.testing.v1 import AppTest

    from dashboard.uploads import OPEN

    at = AppTest.from_file(str(ROOT / "pages" / "spectrum.py"), default_timeout=120)
    at.session_state[OPEN] = True  # the "Your own model" expander: its inputs are drawn only while open
    at.run()
    overflow = {k: v.double() for k, v in rnn_sd().items()}
    overflow["weight_hh_l0"][0, 0] = 1e39
    cases = [
        ("appended.pt", torch_bytes(rnn_sd(nn.GRU)) + GOOD, "refused: the .pt archive has"),
        ("overflow.pt", torch_bytes(overflow), "too large for float32"),
        ("legacy.pt", torch_bytes(rnn_sd(), _use_new_zipfile_serialization=False), "legacy"),
    ]
    for name, data, words in cases:
        at.file_uploader(key="up_model_0").upload(name, data).run()
        assert not at.exception, name
        assert any(words in e.value and "cannot be used" in e.value for e in at.error), (
            name,
            [e.value for e in at.error],
        )
        assert not any("Model: uploaded" in m.value for m in at.markdown)
    poisoned = torch_bytes(PoisonedOrderedDict(rnn_sd(), {"items": 5, "keys": 3}))
    at.file_uploader(key="up_model_0").upload("poisoned.pt", poisoned).run()
    assert not at.exception and any("Model: uploaded poisoned.pt" in m.value for m in at.markdown)
