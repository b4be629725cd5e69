"""Every example runs in its fast configuration (tiny student, pool or scripted teacher); the multi-GPU one as two CPU
processes under torchrun (gloo), the publishing one against a local Hub server."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true"})
    env.pop("HF_HUB_OFFLINE", None)  # InferenceClient refuses even 127.0.0.1 when offline
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: int = 300) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_add_to_existing_trainer(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "add_to_existing_trainer.py"), "--fast", "--output-dir", str(tmp_path)])
    assert "rounds " in out and "accepted 0 of" not in out
    rows = (tmp_path / "activekd" / "generated.jsonl").read_text().splitlines()
    assert rows and all("activekdmarker" in json.loads(r)["text"] for r in rows)  # from the scripted server


@pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft is not installed")
def test_lora_student(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "lora_student.py"), "--fast", "--output-dir", str(tmp_path)])
    assert "LoRA student saved" in out
    assert (tmp_path / "adapter_model.safetensors").is_file() and (tmp_path / "README.md").is_file()


def test_multi_gpu_two_cpu_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(EXAMPLES / "multi_gpu.py")]
    out = _run([*cmd, "--fast", "--output-dir", str(tmp_path)], timeout=420)
    ranks = [json.loads(line.split("RANK_SUMMARY ", 1)[1]) for line in out.splitlines() if "RANK_SUMMARY " in line]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["macro_f1"] == ranks[1]["macro_f1"]  # same decisions on every rank
    assert ranks[0]["accepted"] == ranks[1]["accepted"] > 0
    assert all(r["rows_mixed"] > 0 for r in ranks)  # each rank mixed its share of the generated rows


def test_publish_to_hub(tmp_path):
    token = "hf_dummyExampleToken0123456789"
    with HubServer(token=token) as hub:
        env = _env(HF_ENDPOINT=hub.url, HF_TOKEN=token, HF_HUB_DISABLE_XET="1")
        out = _run(
            [sys.executable, str(EXAMPLES / "publish_to_hub.py"), "--fast", "--repo-id", "tester/tiny-activekd"]
            + ["--output-dir", str(tmp_path)],
            env=env,
        )
        files = hub.files("tester/tiny-activekd")
    assert "model:" in out
    assert {"README.md", "config.json", "model.safetensors"} <= set(files)
    card = files["README.md"].decode()
    assert "pool-simulation" in card and token not in card
