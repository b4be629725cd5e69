"""Every example runs in its fast configuration (tiny student on synthetic topics, a pool teacher, over HTTP for the
first); the multi-GPU one as two CPU processes under torchrun (gloo), the publishing one against a local Hub server.

Each fast run must visibly learn: validation macro-F1 starts near chance and ends at 0.5 or more, and the example says
so in its printed summary."""

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
LEARNED = 0.5  # validation macro-F1 a fast run must reach (chance with 4 balanced classes is about 0.1 to 0.25)


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


def _assert_learned(f1s: list[float], out: str) -> None:
    """The run learned (best and last macro-F1 >= LEARNED, above round 0's) and its printed summary says so."""
    assert len(f1s) >= 3, f1s
    assert max(f1s) >= LEARNED and f1s[-1] >= LEARNED, f"validation macro-F1 by round: {f1s}"
    assert f1s[-1] > f1s[0] + 0.2, f"validation macro-F1 by round: {f1s}"
    line = f"validation macro-F1 {f1s[0]:.2f} -> {f1s[-1]:.2f} over {len(f1s)} rounds"
    assert line in out, f"{line!r} not in the printed summary:\n{out[-2000:]}"


def _round_f1s(output_dir: Path) -> list[float]:
    return [r["macro_f1"] for r in json.loads((output_dir / "activekd" / "rounds.json").read_text())]


def _pool_texts() -> set[str]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from _shared import synthetic_splits
    finally:
        sys.path.remove(str(EXAMPLES))
    train, val, (pool, _) = synthetic_splits(0)
    assert not set(pool) & (set(train["text"]) | set(val["text"]))  # the teacher never hands back a seen text
    return set(pool)


def test_add_to_existing_trainer(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "add_to_existing_trainer.py"), "--fast", "--output-dir", str(tmp_path)])
    assert "accepted 0 of" not in out
    rows = [json.loads(r) for r in (tmp_path / "activekd" / "generated.jsonl").read_text().splitlines()]
    assert rows and all(r["teacher"].startswith("127.0.0.1:") for r in rows)  # through the local server's HTTP API
    assert {r["text"] for r in rows} <= _pool_texts()  # answered by its PoolBackend
    _assert_learned(_round_f1s(tmp_path), out)


@pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft is not installed")
def test_lora_student(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "lora_student.py"), "--fast", "--output-dir", str(tmp_path)])
    assert "LoRA student saved" in out
    assert (tmp_path / "adapter_model.safetensors").is_file() and (tmp_path / "README.md").is_file()
    _assert_learned(_round_f1s(tmp_path), out)


def test_multi_gpu_two_cpu_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(EXAMPLES / "multi_gpu.py")]
    out = _run([*cmd, "--fast", "--output-dir", str(tmp_path)], timeout=420)
    # the two processes share stdout: a line of one can run into a line of the other, so read each JSON object alone
    decoder = json.JSONDecoder()
    ranks = [decoder.raw_decode(part)[0] for part in out.split("RANK_SUMMARY ")[1:]]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["macro_f1"] == ranks[1]["macro_f1"]  # same decisions on every rank
    assert ranks[0]["accepted"] == ranks[1]["accepted"] > 0
    assert all(r["rows_mixed"] > 0 for r in ranks)  # each rank mixed its share of the generated rows
    _assert_learned(ranks[0]["macro_f1"], out)


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
    _assert_learned(_round_f1s(tmp_path), out)


def test_annotate_unlabeled(tmp_path):
    out = _run([sys.executable, str(EXAMPLES / "annotate_unlabeled.py"), "--fast", "--output-dir", str(tmp_path)])
    assert "the teacher labelled 0 of" not in out
    rows = [json.loads(r) for r in (tmp_path / "activekd" / "generated.jsonl").read_text().splitlines()]
    assert rows and {r["origin"] for r in rows} == {"annotated"} and {r["text"] for r in rows} <= _pool_texts()
    _assert_learned(_round_f1s(tmp_path), out)
