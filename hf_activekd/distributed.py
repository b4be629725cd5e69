"""Run a function on the main process and share its result with every process, without ever hanging."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from transformers.utils import logging

logger = logging.get_logger(__name__)

T = TypeVar("T")


class MainProcessError(RuntimeError):
    """Raised on every process when the function failed on the main process (with the main process's message)."""


def _distributed_world() -> tuple[int, int, bool]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size(), True
    except ImportError:  # pragma: no cover
        pass
    return 0, 1, False


def process_info() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` outside distributed runs)."""
    rank, world, _ = _distributed_world()
    return rank, world


def run_on_main_and_broadcast(fn: Callable[[], T]) -> T:
    """Call ``fn`` on the main process only and return its result on every process.

    A broadcast is a collective: every process must take part. If ``fn`` raises on the main process, an error marker
    is broadcast instead of skipping the broadcast (which would hang the others until ``ddp_timeout``), and
    :class:`MainProcessError` is raised on every process.
    """
    rank, world, distributed = _distributed_world()
    if not distributed or world == 1:
        return fn()
    from accelerate.utils import broadcast_object_list

    payload: list[Any] = [None]
    if rank == 0:
        try:
            payload[0] = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - every failure must reach the other ranks
            logger.error("Main-process call failed: %s\n%s", exc, traceback.format_exc())
            payload[0] = ("error", f"{type(exc).__name__}: {exc}")
    broadcast_object_list(payload, from_process=0)
    status, value = payload[0]
    if status == "error":
        raise MainProcessError(value)
    return value


def data_parallel_info(process_index: int, world_size: int, accelerator: Any = None) -> tuple[int, int]:
    """``(data-parallel rank, data-parallel size)`` of this process.

    Under tensor, context or sequence parallelism several processes share one batch: they must see the same generated
    rows, so rows are sharded by the data-parallel rank, not the global one. accelerate lays its device mesh out as
    ``(dp_replicate, dp_shard, cp, sp, tp)`` with the last dimension varying fastest, so the processes of one
    data-parallel group are consecutive global ranks.
    """
    config = getattr(accelerator, "parallelism_config", None) if accelerator is not None else None
    group = 1
    for name in ("cp_size", "sp_size", "tp_size"):
        size = getattr(config, name, None) if config is not None else None
        if isinstance(size, int) and size > 1:
            group *= size
    if group <= 1 or world_size % group:
        return process_index, world_size
    return process_index // group, world_size // group


def barrier() -> None:
    """Wait for every process (no-op outside distributed runs): a broadcast of nothing, so it can never hang alone."""
    run_on_main_and_broadcast(lambda: None)
