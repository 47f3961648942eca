"""Device and dtype names: parsed once, with one-line errors naming the flag."""

from __future__ import annotations

import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.io.devices import parse_device, resolve_device, resolve_dtype


def test_device_and_dtype_choices():
    cpu = resolve_device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(InputError, match="float32"):
        resolve_dtype("fp8", cpu)
    with pytest.raises(InputError, match="auto, cpu, cuda"):
        resolve_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_parse_device_needs_no_torch_and_names_the_flag():
    assert parse_device("cuda:1") == ("cuda", 1)
    assert parse_device("CPU") == ("cpu", None)
    with pytest.raises(InputError, match="--pose-device must be"):
        parse_device("cpu:0", flag="--pose-device")
