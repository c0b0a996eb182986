"""Issue 11's hostile inputs: crafted state_dicts and archives, parametrized modules, and the values the fuzz
tests hand every public function."""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path

import torch
from hypothesis import HealthCheck, settings
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
ATTACK_I, ATTACK_H = 3, 4


def torch_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def attack_sd(cell=nn.RNN) -> dict:
    torch.manual_seed(0)
    return dict(cell(ATTACK_I, ATTACK_H).state_dict())


GOOD = torch_bytes(attack_sd())


class PoisonedOrderedDict:
    """Pickles as collections.OrderedDict (allow-listed) plus a BUILD whose state shadows its methods."""

    def __init__(self, sd, state):
        self.sd, self.state = sd, state

    def __reduce__(self):
        return (OrderedDict, (), self.state, None, iter(self.sd.items()))


FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def allow_value_errors(fn):
    try:
        fn()
    except ValueError:
        pass
