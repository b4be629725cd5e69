"""Whether the student's weights are split across processes (FSDP, DeepSpeed ZeRO-3, tensor or context parallel).

A forward pass of such a model is a collective: every process must join it. Work that runs on the main process alone
(the latency measurement written into the model card) must then be skipped, or training hangs at its end.
"""

from __future__ import annotations

from typing import Any


def _zero_stage(trainer: Any) -> int | None:
    accelerator = getattr(trainer, "accelerator", None)
    plugin = getattr(getattr(accelerator, "state", None), "deepspeed_plugin", None)
    stage = getattr(plugin, "zero_stage", None)
    if stage is not None:
        return int(stage)
    hf_config = getattr(getattr(trainer, "args", None), "hf_deepspeed_config", None)
    if hf_config is not None and hasattr(hf_config, "is_zero3"):
        return 3 if hf_config.is_zero3() else None
    return None


def sharding_of(trainer: Any) -> str | None:
    """How the trainer's model is split across processes (``"FSDP"``, ``"DeepSpeed ZeRO-3"``, ``"tensor parallel"``,
    ``"context parallel"``), or `None` when every process holds the whole model."""
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_fsdp_xla_enabled", False):
        return "FSDP"
    if getattr(trainer, "is_deepspeed_enabled", False) and _zero_stage(trainer) == 3:
        return "DeepSpeed ZeRO-3"
    parallelism = getattr(getattr(trainer, "accelerator", None), "parallelism_config", None)
    if parallelism is not None:
        if getattr(parallelism, "tp_enabled", False):
            return "tensor parallel"
        if getattr(parallelism, "dp_shard_enabled", False):
            return "FSDP"
        if getattr(parallelism, "cp_enabled", False) or getattr(parallelism, "sp_enabled", False):
            return "context parallel"
    model = getattr(trainer, "model", None)
    tp_size = getattr(model, "tp_size", None)
    if isinstance(tp_size, int) and tp_size > 1:
        return "tensor parallel"
    return None
