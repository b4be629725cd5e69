"""A training process killed (SIGKILL) while a round's answers arrive pays again only for the answers in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hf_activekd.server import ScriptedBackend, TeacherServer

SCRIPT = Path(__file__).parent / "scripts" / "crash_train.py"


def test_kill_mid_round_then_resume_pays_only_for_what_was_in_flight(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true")
    with TeacherServer(ScriptedBackend(latency_s=0.5)) as server:  # a slow teacher, one request at a time
        cmd = [sys.executable, str(SCRIPT), str(tmp_path), server.url]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # rounds 0 and 1 (steps 5 and 10, checkpoint-10 holds them) send 8 requests; kill in round 2 (step 15)
            # once its 2nd request reached the server: one answer of the round has arrived, one is in flight
            deadline = time.time() + 120
            while server.stats["generations"] < 10 and proc.poll() is None and time.time() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        sent_before_resume = server.stats["generations"]
        in_flight = 1  # max_concurrency=1
        assert sent_before_resume == 10

        resumed = subprocess.run(cmd + ["resume"], env=env, capture_output=True, text=True, timeout=180)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        rounds = json.loads((tmp_path / "result.json").read_text())["rounds"]
        sent = server.stats["generations"]
    assert [r["round"] for r in rounds] == [0, 1, 2, 3] and all(r["accepted"] == 8 for r in rounds[:3])
    assert rounds[3]["skipped"].startswith("last step")  # no round paid for at the last step
    assert sent <= sum(r["requests"] for r in rounds) + in_flight  # 12 requests recorded, 13 sent at most
    assert rounds[2]["replayed"] == 1  # the answer that arrived before the kill was used, not bought again
