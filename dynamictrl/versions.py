"""Package versions recorded next to every output (animation sidecars, evaluation reports)."""

from __future__ import annotations

import importlib.metadata
import platform

from ._version import __version__

CORE_PACKAGES = ("torch", "diffusers", "transformers", "accelerate", "huggingface-hub", "av", "numpy")


def package_versions(names: tuple[str, ...] = CORE_PACKAGES) -> dict[str, str | None]:
    """{name: version} for python, dynamictrl and `names`; None for a package that is not installed."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "dynamictrl": __version__}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
