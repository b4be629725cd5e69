"""Launching the two-process scripts of ``tests/scripts`` (torchrun, CPU, gloo) and comparing the round records
their ranks write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"


def torchrun(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs ``tests/scripts/<script>`` under ``torchrun --standalone --nproc_per_node 2`` on CPU, output captured."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(SCRIPTS / script),
    ]
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=timeout)


def untimed(rounds: list[dict]) -> list[dict]:
    """The round records without the evaluation timings each rank measures itself (what must agree across ranks)."""
    return [
        {
            **r,
            "eval_metrics": {
                k: v for k, v in r["eval_metrics"].items() if "runtime" not in k and "per_second" not in k
            },
        }
        for r in rounds
    ]
