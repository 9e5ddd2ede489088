"""Run by ``torchrun`` from test_distributed.py: train a tiny model under DDP, dump this rank's weights digest."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from nlu.schema import Example
from training.config import TrainingConfig
from training.trainer import Trainer


def main() -> None:
    encoder, data_file, out_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    examples = [Example.from_dict(json.loads(line)) for line in data_file.read_text().splitlines()]
    torch.set_num_threads(1)
    config = TrainingConfig(base_model=encoder, epochs=2, min_steps=0, batch_size=4, seed=7, device="cpu", dev_split=0)
    trainer = Trainer(config, examples, [], out_dir=out_dir / "model", show_progress=False)
    initial = None

    original_build = trainer._build

    def build_and_remember() -> None:
        nonlocal initial
        original_build()
        initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer._build = build_and_remember
    result = trainer.run()
    state = result.bundle.model.state_dict()
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().numpy().tobytes())
    changed = any(not torch.equal(initial[k], state[k]) for k in state)
    rank = int(os.environ["RANK"])
    (out_dir / f"rank{rank}.json").write_text(
        json.dumps({"digest": digest.hexdigest(), "changed": changed, "world": int(os.environ["WORLD_SIZE"]),
                    "steps": len(result.history)})
    )


if __name__ == "__main__":
    main()
