"""Nothing uploaded is ever unpickled into arbitrary objects, and hostile files fail cleanly.

Each malicious payload below is *live*: ``test_payloads_are_live`` runs it through plain
``pickle.loads`` and sees its side effect (a marker file, a flag), so the tests that load the
same bytes through :func:`load_model` and find no side effect can fail if the code ever runs.
The two defences are also tested one at a time, each with the other switched off.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save
from torch import nn

import bptt_core.files.model_io as mio
from bptt_core.files.model_io import ModelFileError, SequenceFileError, load_model, load_sequence, model_bytes

FLAG = "_bptt_explorer_pwned"  # a builtins attribute the payloads set; must never appear


class SetFlag:
    def __reduce__(self):
        return (builtins.exec, (f"import builtins; builtins.{FLAG} = True",))


class Touch:
    """Creates the marker file when unpickled, through os.system."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class OpenFile:
    """Creates the marker file when unpickled, through builtins.open (no shell involved)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


class EvalFlag:
    def __reduce__(self):
        return (builtins.eval, (f"setattr(__import__('builtins'), {FLAG!r}, True)",))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    if hasattr(builtins, FLAG):
        delattr(builtins, FLAG)


def payloads(marker) -> dict:
    """Hostile objects: bare, and hidden among real tensors in an otherwise valid state_dict."""
    good = nn.RNN(2, 3).state_dict()
    return {
        "exec": SetFlag(),
        "eval": EvalFlag(),
        "os.system": Touch(marker),
        "open": OpenFile(marker),
        "inside a state_dict": {**good, "weight_hh_l0": Touch(marker)},
        "extra key beside tensors": {**good, "evil": SetFlag()},
        "nested": {"model_state_dict": {**good, "x": [OpenFile(marker)]}},
    }


def no_side_effect(marker) -> bool:
    return not marker.exists() and not hasattr(builtins, FLAG)


def torch_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


# How the hostile pickle reaches us: every way a .pt can be written, and a bare pickle.
ENCODINGS = {
    "torch.save zip, protocol 2": lambda o: torch_bytes(o),
    "torch.save zip, protocol 4": lambda o: torch_bytes(o, pickle_protocol=4),
    "torch.save legacy format": lambda o: torch_bytes(o, _use_new_zipfile_serialization=False),
    "bare pickle, protocol 2": lambda o: pickle.dumps(o, protocol=2),
    "bare pickle, protocol 5": lambda o: pickle.dumps(o, protocol=5),
}
PAYLOADS = ["exec", "eval", "os.system", "open", "inside a state_dict", "extra key beside tensors", "nested"]


def test_payloads_are_live(marker):
    """Control: the same payloads DO run under an ordinary unpickler, so the tests below can fail."""
    p = payloads(marker)
    pickle.loads(pickle.dumps(p["exec"]))
    assert getattr(builtins, FLAG) is True
    delattr(builtins, FLAG)
    pickle.loads(pickle.dumps(p["open"])).close()
    assert marker.exists()
    marker.unlink()
    torch.load(io.BytesIO(torch_bytes(p["nested"])), weights_only=False)  # the unsafe path, on purpose
    assert marker.exists()


def assert_refused(err, marker):
    msg = str(err.value)
    assert "refused" in msg or "not a readable PyTorch file" in msg, msg
    assert "weights_only=False" not in msg  # never advise the unsafe path
    assert "state_dict" in msg  # says what is expected
    assert no_side_effect(marker)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_malicious_pickle_is_refused_and_never_runs(payload, encoding, marker):
    data = ENCODINGS[encoding](payloads(marker)[payload])
    with pytest.raises(ModelFileError) as err:
        load_model(data, "model.pt")
    assert_refused(err, marker)


@pytest.mark.parametrize("payload", ["exec", "os.system", "inside a state_dict"])
def test_message_names_what_the_file_would_import(payload, marker):
    with pytest.raises(ModelFileError) as err:
        load_model(torch_bytes(payloads(marker)[payload]), "model.pth")
    msg = str(err.value)
    assert "would import" in msg and ("exec" in msg or "system" in msg), msg
    assert "nothing in it was run" in msg
    assert no_side_effect(marker)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_scan_alone_refuses_before_anything_is_unpickled(payload, marker, monkeypatch):
    """First defence on its own: torch.load is never even reached."""

    def never(*a, **k):
        raise AssertionError("torch.load reached with a hostile archive")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ModelFileError, match="found before loading"):
        load_model(torch_bytes(payloads(marker)[payload]), "model.pt")
    assert no_side_effect(marker)


@pytest.mark.parametrize("encoding", ["torch.save zip, protocol 2", "torch.save zip, protocol 4"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_weights_only_alone_refuses(payload, encoding, marker, monkeypatch):
    """Second defence on its own: with the scan switched off, torch.load(weights_only=True) refuses."""
    monkeypatch.setattr(mio, "_scan_pickle", lambda program: None)
    with pytest.raises(ModelFileError) as err:
        load_model(ENCODINGS[encoding](payloads(marker)[payload]), "model.pt")
    assert "torch.load(weights_only=True)" in str(err.value)
    assert_refused(err, marker)


def test_hostile_pickle_spliced_into_a_valid_archive(marker):
    """A real torch.save archive whose data.pkl is swapped for a hostile program."""
    good = torch_bytes(nn.GRU(2, 3).state_dict())
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = pickle.dumps(Touch(marker), protocol=2) if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info.filename, body)
    with pytest.raises(ModelFileError) as err:
        load_model(out.getvalue(), "model.pt")
    assert_refused(err, marker)


def test_pickled_object_array_in_npy_is_refused(marker):
    arr = np.empty((1, 2), dtype=object)
    arr[0, 0], arr[0, 1] = Touch(marker), SetFlag()
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    with pytest.raises(SequenceFileError, match="refused, nothing was unpickled"):
        load_sequence(buf.getvalue(), "x.npy", 2)
    assert no_side_effect(marker)


# -- hostile or broken files that are not code ---------------------------------------------------


def zip_with(entries: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return out.getvalue()


def test_zip_bomb_is_refused_before_expansion(monkeypatch):
    monkeypatch.setattr(mio, "MAX_UNPACKED_BYTES", 2**20)  # the real limit is 200 MiB; same code path
    bomb = zip_with({"archive/data.pkl": pickle.dumps({}), "archive/data/0": bytes(4 * 2**20)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2**16  # 4 MiB of zeros deflate to a few KiB

    def never(*a, **k):
        raise AssertionError("torch.load reached with a zip bomb")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(ModelFileError, match=r"would expand to 4 MiB: the limit is 1 MiB"):
        load_model(bomb, "bomb.pt")


def test_real_expansion_limit_is_documented():
    assert mio.MAX_UNPACKED_BYTES >= mio.MAX_UPLOAD_BYTES == 50 * 2**20
    assert "MAX_UPLOAD_BYTES" in mio.__doc__


def test_archive_with_too_many_entries(monkeypatch):
    monkeypatch.setattr(mio, "MAX_ARCHIVE_ENTRIES", 5)
    data = zip_with({f"archive/{i}": b"" for i in range(6)})
    with pytest.raises(ModelFileError, match="6 entries"):
        load_model(data, "m.pt")


def test_archive_without_a_pickle():
    with pytest.raises(ModelFileError, match="not a torch.save file"):
        load_model(zip_with({"hello.txt": b"hi"}), "m.pt")


GOOD_PT = model_bytes(nn.LSTM(2, 3), "m.pt")
GOOD_ST = model_bytes(nn.LSTM(2, 3), "m.safetensors")


@pytest.mark.parametrize("cut", [1, 4, 30, 100, len(GOOD_PT) // 2, len(GOOD_PT) - 22, len(GOOD_PT) - 1])
def test_truncated_pt(cut):
    with pytest.raises(ModelFileError, match=r"truncated|corrupt|not a readable|not a PyTorch file"):
        load_model(GOOD_PT[:cut], "m.pt")


@pytest.mark.parametrize("cut", [1, 8, 9, 40, len(GOOD_ST) // 2, len(GOOD_ST) - 1])
def test_truncated_safetensors(cut):
    with pytest.raises(ModelFileError, match=r"not a valid \.safetensors file"):
        load_model(GOOD_ST[:cut], "m.safetensors")


def st_raw(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + body


BAD_SAFETENSORS = {
    "header length beyond the file": struct.pack("<Q", 10**12) + b"{}",
    "invalid JSON": st_raw(b'{"a": {"dtype": "F32"'),
    "unknown dtype": st_raw(b'{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}', bytes(4)),
    "offsets past the data": st_raw(b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', bytes(4)),
    "shape disagrees with offsets": st_raw(b'{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}', bytes(4)),
    "metadata not strings": st_raw(
        b'{"__metadata__":{"cell":[1]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)
    ),
}


@pytest.mark.parametrize("case", BAD_SAFETENSORS)
def test_malformed_safetensors(case):
    with pytest.raises(ModelFileError, match=r"safetensors"):
        load_model(BAD_SAFETENSORS[case], "m.safetensors")


def test_valid_safetensors_without_a_recurrent_layer():
    with pytest.raises(ModelFileError, match="no recurrent layer"):
        load_model(st_save({"a": torch.zeros(2)}), "m.safetensors")


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("filename", ["m.pt", "m.safetensors", "x.npy", "x.csv"])
def test_random_bytes(seed, filename):
    data = np.random.default_rng(seed).bytes(1 + 97 * seed)
    loader = (lambda: load_sequence(data, filename, 2)) if filename[0] == "x" else (lambda: load_model(data, filename))
    with pytest.raises(ValueError) as err:
        loader()
    assert isinstance(err.value, mio.UploadError) and "expected" in str(err.value)


@pytest.mark.parametrize("filename", ["m.pt", "m.safetensors", "x.npy", "x.csv"])
def test_empty_file(filename):
    loader = load_sequence if filename[0] == "x" else load_model
    args = (b"", filename, 2) if filename[0] == "x" else (b"", filename)
    with pytest.raises(mio.UploadError, match=r"is empty \(0 bytes\)"):
        loader(*args)


def test_safetensors_bytes_with_a_pt_name_get_a_hint():
    with pytest.raises(ModelFileError, match="expected a .safetensors extension"):
        load_model(GOOD_ST, "m.pt")


@pytest.mark.parametrize("not_bytes", ["a string", None, 12, [1, 2]])
def test_upload_that_is_not_bytes(not_bytes):
    with pytest.raises(ModelFileError, match="must be bytes"):
        load_model(not_bytes, "m.pt")


def stack_global_trick(marker) -> bytes:
    """A hand-written protocol 4 program: push "os", a decoy, POP it, push "system", STACK_GLOBAL,
    then call os.system("touch marker"). The decoy shifts which strings are the module and name."""

    def s(text: str) -> bytes:
        b = text.encode()
        return b"\x8c" + bytes([len(b)]) + b  # SHORT_BINUNICODE

    cmd = f"touch '{marker}'"
    return b"\x80\x04" + s("os") + b"\x94" + s("decoy") + b"0" + s("system") + b"\x93" + s(cmd) + b"\x85R."


@pytest.mark.parametrize("torch_load_off", [False, True])
def test_hand_written_stack_global_program(marker, monkeypatch, torch_load_off):
    program = stack_global_trick(marker)
    pickle.loads(program)  # control: the program is live
    assert marker.exists()
    marker.unlink()
    good = torch_bytes(nn.GRU(2, 3).state_dict())
    src = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, program if info.filename.endswith("data.pkl") else src.read(info))
    if torch_load_off:  # the scan alone must refuse the archive (a bare pickle needs torch.load)
        monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    for data in (out.getvalue(),) if torch_load_off else (out.getvalue(), program):  # in an archive, bare
        with pytest.raises(ModelFileError) as err:
            load_model(data, "model.pt")
        assert_refused(err, marker)
