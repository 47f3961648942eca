"""Pose extraction backends: `base.PoseExtractor` (the interface), `dwpose` (ONNX, what the model was trained on)
and `mediapipe` (offline, from the wheel). `dynamictrl.pose.extract.get_extractor` chooses between them.

Nothing is imported here, so that importing one backend does not load the other's dependencies.
"""
