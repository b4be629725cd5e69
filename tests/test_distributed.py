"""Two processes (torchrun, gloo, CPU): every rank trains on generated rows, records agree, failures don't hang."""

from __future__ import annotations

import json

from torchrun_utils import torchrun, untimed


def test_two_processes_train_on_generated_rows(tmp_path):
    proc = torchrun("ddp_train.py", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in results] == [2, 2]
    assert all(r["global_step"] == 12 for r in results)  # training went to the end on both ranks
    # the teacher ran on the main process only
    assert results[0]["teacher_calls"] == 2 and results[1]["teacher_calls"] == 0  # none at the last step

    # round records agree across ranks (all but the timings each rank measures itself)
    assert untimed(results[0]["rounds"]) == untimed(results[1]["rounds"])
    rounds = results[0]["rounds"]
    assert len(rounds) == 3
    assert rounds[0]["accepted"] == 8 and rounds[2]["skipped"].startswith("last step")
    assert rounds[1]["accepted"] == 0 and "teacher connection reset" in rounds[1]["error"]
    # both ranks trained on generated rows (each its own share), none reached evaluation
    assert all(r["train_marker_rows"] > 0 for r in results)
    assert all(r["eval_marker_rows"] == 0 for r in results)
