"""Evaluation: the field's metrics under named protocols, pose fidelity, and the `dynamictrl evaluate` report.

`metrics` (frame metrics), `lpips`, `video_metrics` (FID, FID-VID, FVD, Fréchet distance), `pose_fidelity`,
`temporal` (flicker), `protocols`, `evaluator` (the run), `report` (metrics.json and report.html), `weights`
(where weight files are found), `networks` (the backbones in plain torch). See docs/evaluation.md.
"""
