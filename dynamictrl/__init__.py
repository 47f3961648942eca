"""dynamictrl: pose-guided human image animation with DynamiCtrl (arXiv 2503.21246).

Heavy modules (torch, diffusers) load on first use, so `dynamictrl --help` and `--version` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

_LAZY = {
    "DynamiCtrlTransformer": "dynamictrl.models.transformer_dynamictrl",
    "PoseAdaptiveLayerNorm": "dynamictrl.models.transformer_dynamictrl",
    "DynamiCtrlPipeline": "dynamictrl.pipelines.pipeline_dynamictrl",
    "DynamiCtrlPipelineOutput": "dynamictrl.pipelines.pipeline_dynamictrl",
    "load_pipeline": "dynamictrl.pipelines.loading",
}

__all__ = [
    "__version__",
    "DynamiCtrlTransformer",
    "PoseAdaptiveLayerNorm",
    "DynamiCtrlPipeline",
    "DynamiCtrlPipelineOutput",
    "load_pipeline",
]

if TYPE_CHECKING:
    from .models.transformer_dynamictrl import DynamiCtrlTransformer, PoseAdaptiveLayerNorm
    from .pipelines.loading import load_pipeline
    from .pipelines.pipeline_dynamictrl import DynamiCtrlPipeline, DynamiCtrlPipelineOutput


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dynamictrl' has no attribute {name!r}")
