"""What a resumed run needs beyond model, optimizer and LR schedule (which accelerate saves itself).

`accelerator.save_state` also stores the python / numpy / torch RNG states; `TrainState` adds the step, the data
position and the step generator (every augmentation and noise draw of `training.spec.prepare_batch`). It is
registered with `accelerator.register_for_checkpointing`, so it travels in the same checkpoint folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainState:
    seed: int = 0
    global_step: int = 0  # optimizer steps done
    epoch: int = 0
    position: int = 0  # samples of `epoch` already consumed by this rank
    generator: torch.Generator = field(default_factory=torch.Generator)

    def __post_init__(self) -> None:
        self.generator.manual_seed(self.seed)

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "global_step": self.global_step,
            "epoch": self.epoch,
            "position": self.position,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.global_step = int(state["global_step"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.generator.set_state(state["generator"])
