"""The pipeline tests' shared fixture: the published tiny pipeline (`reference_tiny`), without T5 (tests pass
prompt embeddings). A module's own `pipe` fixture replaces it there."""

from __future__ import annotations

import pytest
from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler

from dynamictrl import DynamiCtrlPipeline, DynamiCtrlTransformer


@pytest.fixture(scope="module")
def pipe(reference_tiny):
    return DynamiCtrlPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=AutoencoderKLCogVideoX.from_pretrained(reference_tiny / "vae").eval(),
        transformer=DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer").eval(),
        scheduler=CogVideoXDPMScheduler.from_pretrained(reference_tiny / "scheduler"),
    )
