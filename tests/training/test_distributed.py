"""DDP on CPU: two processes under torchrun end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TINY_EXAMPLES


@pytest.mark.slow
def test_two_replicas_end_with_identical_weights(tiny_encoder_dir, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in TINY_EXAMPLES * 4) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(Path(__file__).with_name("ddp_worker.py")), str(tiny_encoder_dir), str(data), str(tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert all(r["changed"] for r in ranks), "training did not change the weights"
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert (tmp_path / "model" / "model.safetensors").is_file()  # rank 0 saved the artefact
