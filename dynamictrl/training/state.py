"""What a resumed run needs beyond model, optimizer and LR schedule (which accelerate saves itself).

`accelerator.save_state` also stores the python / numpy / torch RNG states; `TrainState` adds the step and the
data position. The step's own randomness needs no state: every draw of a sample comes from a generator seeded by
`(seed, epoch, index)` (`training.spec.sample_generator`). The trainer's checkpoint hooks save it per rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainState:
    seed: int = 0
    global_step: int = 0  # optimizer steps done
    epoch: int = 0
    position: int = 0  # samples of `epoch` already consumed by this rank

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "global_step": self.global_step, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.global_step = int(state["global_step"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
