"""What the torchrun scripts beside it share: each process's tokenizer, the tiny two-process Trainer (one GPU each with
NCCL where there are enough GPUs, else CPU with gloo), and
training with a marker recorder, then writing what the rank saw to ``<out>/rank-<r>.json``.

The scripts are run as files (``torchrun tests/scripts/ddp_*.py``), so this directory is on ``sys.path`` and they
import this module by name; it puts ``tests/`` there for ``testing_utils``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import Trainer  # noqa: E402

from testing_utils import MARKER, ForwardRecorder, build_trainer, make_tokenizer  # noqa: E402


def start(out: str):
    """The output folder and this process's own copy of the tiny tokenizer."""
    out_dir = Path(out)
    return out_dir, make_tokenizer(out_dir / f"tok-{os.environ['RANK']}")


def ddp_trainer(tokenizer, out_dir: Path) -> Trainer:
    """The tests' tiny Trainer for 2 processes: an evaluation every 4 steps, 12 steps, 4 rows a batch per rank. Each
    process gets its own GPU when there is one for every process (NCCL), else the CPU (gloo), like transformers'
    ``torch_device``."""
    on_gpu = torch.cuda.device_count() >= int(os.environ["WORLD_SIZE"])
    return build_trainer(
        tokenizer,
        out_dir / "run",
        eval_steps=4,
        max_steps=12,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        use_cpu=not on_gpu,
        ddp_backend="nccl" if on_gpu else "gloo",
    )


def train(trainer: Trainer, callback, tokenizer) -> dict:
    """Adds ``callback``, trains while counting marker rows, and returns what this rank saw: its step, the rounds
    and the marker rows of training and evaluation."""
    trainer.add_callback(callback)
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    return {
        "rank": int(os.environ["RANK"]),
        "world_size": trainer.args.world_size,
        "global_step": trainer.state.global_step,
        "rounds": callback.rounds,
        "train_marker_rows": recorder.train_marker_rows,
        "eval_marker_rows": recorder.eval_marker_rows,
    }


def write_result(out_dir: Path, result: dict) -> None:
    (out_dir / f"rank-{result['rank']}.json").write_text(json.dumps(result, default=str))


def end_process_group() -> None:
    """Destroys the process group before the interpreter exits. Without it gloo's worker threads can outlive the
    interpreter and abort the process (``terminate called without an active exception``, SIGABRT) after a run
    that succeeded; seen on a loaded 2-core machine (pytorch/pytorch#190489)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
