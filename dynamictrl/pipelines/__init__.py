"""Pipelines: reference image + pose video + prompt → video."""
