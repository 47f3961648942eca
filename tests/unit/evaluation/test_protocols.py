"""Named protocols: lookup by name, and every protocol can be saved in metrics.json."""

from __future__ import annotations

import json

import pytest

from dynamictrl.errors import InputError
from dynamictrl.evaluation.protocols import PROTOCOLS, get_protocol

DISCO, DYNAMICTRL = PROTOCOLS["disco"], PROTOCOLS["dynamictrl"]


def test_get_protocol_lists_the_valid_names():
    assert get_protocol("disco") is DISCO
    with pytest.raises(InputError, match="disco, dynamictrl"):
        get_protocol("tiktok")
    assert json.dumps(DYNAMICTRL.to_dict())  # the protocol is saved in metrics.json
