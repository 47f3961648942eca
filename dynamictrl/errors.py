"""User-facing failures.

Every error a user can cause (bad input, missing weights, offline hub) is a `DynamiCtrlError` whose message says
what is wrong and how to fix it, in one line. The CLI catches `DynamiCtrlError` once and prints the message; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class DynamiCtrlError(Exception):
    """Base class of every error meant to be shown to a user as one line."""


class InputError(DynamiCtrlError, ValueError):
    """An argument or an input file is invalid (wrong frame count, size, missing file, not an image...)."""


class MediaError(InputError):
    """An image or video cannot be read or decoded."""


class ModelNotFoundError(DynamiCtrlError, FileNotFoundError):
    """Weights are missing locally and cannot be downloaded (offline, or a wrong path / hub id)."""


class CheckpointError(DynamiCtrlError):
    """Weights exist but do not fit: a plain CogVideoX checkpoint where DynamiCtrl is needed, wrong shapes."""


class PoseError(DynamiCtrlError):
    """Pose extraction or alignment cannot produce a usable pose sequence (no person, unusable framing)."""


class MetricUnavailableError(DynamiCtrlError):
    """A metric needs weights that are not available (offline); the other metrics can still run."""
