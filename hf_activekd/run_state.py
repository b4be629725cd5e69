"""What a run is, and how its round state travels with every checkpoint.

- A **run** is one fresh ``trainer.train()`` and every resume of it. It has a run id, stored with the round state;
  answers in the answer log are replayed only for the run that paid for them.
- A fresh start in an ``output_dir`` that already holds ``activekd/`` moves that folder aside
  (``activekd.old-<UTC time>``, numbered if needed; nothing is deleted) and starts clean.
- The round state (records, early stopping, teacher spend, run id and the generated rows up to the checkpoint) is an
  :class:`ActiveKDRoundState` (transformers' ``ExportableState``): the Trainer writes it into every checkpoint's
  ``trainer_state.json`` (``stateful_callbacks``) on every node that saves, and reads it back from whatever path
  ``resume_from_checkpoint`` names, inside ``output_dir`` or not. ``activekd_state.json`` beside it is kept for
  people and for checkpoints written by 0.1.0.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.utils import logging

logger = logging.get_logger(__name__)

STATE_FILE = "activekd_state.json"


def new_run_id() -> str:
    """A fresh run id: UTC start time and a random suffix (``20261127T031500-1a2b3c4d``)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def move_aside(folder: str | os.PathLike) -> Path | None:
    """Rename a non-empty ``folder`` to ``<folder>.old-<UTC time>`` (``-1``, ``-2``, ... if taken) and return the new
    path; `None` when there was nothing to move (or another process moved it first)."""
    folder = Path(folder)
    try:
        if not folder.is_dir() or not any(folder.iterdir()):
            return None
    except FileNotFoundError:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for n in range(1000):
        target = folder.with_name(f"{folder.name}.old-{stamp}" + (f"-{n}" if n else ""))
        if target.exists():
            continue
        try:
            os.rename(folder, target)
        except FileNotFoundError:  # another process of this run moved it already
            return None
        except OSError:  # the target appeared meanwhile: try the next name
            continue
        return target
    raise RuntimeError(f"Could not move {folder} aside: too many earlier copies.")


class ActiveKDRoundState(TrainerCallback, ExportableState):
    """The round state in ``trainer_state.json``: saved with every checkpoint, restored from any checkpoint path.

    Its constructor takes JSON values only, as ``ExportableState`` requires (the Trainer may rebuild it on resume
    with ``restore_callback_states_from_checkpoint=True``). :class:`~hf_activekd.ActiveKDCallback` adds it to the
    Trainer and points :attr:`source` at its round runner; it does nothing on Trainer events itself.

    Args:
        runner_state (`dict`, *optional*): A :meth:`RoundRunner.state_dict`.
    """

    def __init__(self, runner_state: dict[str, Any] | None = None):
        self.runner_state = runner_state
        self.source = None  # a callable returning the current runner state

    def state(self) -> dict[str, Any]:
        current = self.source() if self.source is not None else self.runner_state
        return {"args": {}, "attributes": {"runner_state": current}}


STATE_KEY = ActiveKDRoundState.__name__


def install_round_state(trainer, state: TrainerState, source) -> ActiveKDRoundState:
    """Find (or add) the trainer's :class:`ActiveKDRoundState` and make it report ``source()`` in checkpoints."""
    found = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, ActiveKDRoundState)]
    holder = found[0] if found else ActiveKDRoundState()
    if not found:
        trainer.add_callback(holder)
    holder.source = source
    # The Trainer lists the exportable callbacks when training starts; one added now needs its entry made here.
    if isinstance(state.stateful_callbacks, dict) and STATE_KEY not in state.stateful_callbacks:
        state.stateful_callbacks[STATE_KEY] = holder.state()
    return holder


def saved_runner_state(args: TrainingArguments, state: TrainerState) -> tuple[dict[str, Any] | None, str]:
    """The runner state of the checkpoint being resumed, and where it came from.

    From ``trainer_state.json`` of the checkpoint (loaded by the Trainer from whatever path it resumes), else from
    ``<output_dir>/checkpoint-<step>/activekd_state.json`` (checkpoints written by 0.1.0).
    """
    entry = (state.stateful_callbacks or {}).get(STATE_KEY) if isinstance(state.stateful_callbacks, dict) else None
    if isinstance(entry, list):
        entry = entry[-1] if entry else None
    if isinstance(entry, dict):
        runner_state = (entry.get("attributes") or {}).get("runner_state")
        if isinstance(runner_state, dict):
            return runner_state, "trainer_state.json"
    path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / STATE_FILE
    if path.exists():
        with open(path, encoding="utf-8") as f:
            return json.load(f), os.fspath(path)
    return None, ""
