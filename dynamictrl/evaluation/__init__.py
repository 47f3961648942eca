"""Evaluation: the field's metrics under named protocols, pose fidelity, and the `dynamictrl evaluate` report.

The run, lowest first (imports only flow upwards in this list):

- `protocols`: the named protocols (frame selection, resolution, metric variants).
- `metrics` (frame metrics), `lpips`, `video_metrics` (FID, FID-VID, FVD, Fréchet distance), `pose_fidelity`,
  `temporal` (flicker); `networks` (the backbones in plain torch) and `weights` (where weight files are found).
- `discovery`: finding the videos of a folder, pairing generated with ground truth by name, reading and aligning.
- `network_set`: the metric networks of one run, loaded once; what could not load and why.
- `measure`: every metric of one aligned pair. `aggregate`: the numbers over the whole set.
- `evaluator`: `EvaluationConfig`, `evaluate()` (the run) and `EvaluationResult`.
- `report`: metrics.json and report.html, and the check of the report folder.

See docs/evaluation.md.
"""
