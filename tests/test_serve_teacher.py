"""`hf-activekd serve-teacher` (server/serve_teacher.py) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from teacher_testing import free_port, get, make_requests

from hf_activekd.teachers import TGITeacher


def test_serve_main_with_a_pool(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label\nfirst real example,alpha\nsecond real example,alpha\n")
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = "import sys; from hf_activekd.server.app import serve_main; sys.exit(serve_main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--pool", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if get(url + "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.time() < deadline, "the server did not start"
            time.sleep(0.2)
        assert json.loads(get(url + "/info")[1])["model_id"] == "pool-simulation"
        [response] = TGITeacher(url).generate(make_requests(1, label="alpha"), progress=False)
        assert sorted(s.text for s in response.samples) == ["first real example", "second real example"]
    finally:
        process.terminate()
        process.wait(timeout=10)
