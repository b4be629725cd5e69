"""Run by tests/test_crash_resume.py: trains the tiny student with a TGI teacher, to be killed mid-round and resumed.

Usage: ``crash_train.py OUT TEACHER_URL [resume] [overlap]``. A checkpoint every 5 steps, a round at every evaluation
(every 5 steps), 4 requests a round. With ``resume``, training continues from the last checkpoint in ``OUT/run``; with
``overlap``, rounds run in the background (``overlap=True``). At the end, the round records go to ``OUT/result.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_activekd import ActiveKDCallback, ActiveKDConfig, TGITeacher  # noqa: E402
from testing_utils import build_trainer, make_tokenizer  # noqa: E402


def main(out: str, url: str, resume: bool, overlap: bool = False) -> None:
    out_dir = Path(out)
    tokenizer = make_tokenizer(out_dir / "tokenizer")
    trainer = build_trainer(tokenizer, out_dir / "run", max_steps=20, save_strategy="steps", save_steps=5)
    config = ActiveKDConfig(
        samples_per_round=8, samples_per_request=2, allocation="uniform", patience=0, overlap=overlap
    )
    callback = ActiveKDCallback(
        trainer,
        TGITeacher(url, max_concurrency=1),
        config,
        preprocess=lambda rows: tokenizer(rows["text"], truncation=True),
        progress=False,
    )
    trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=True if resume else None)
    (out_dir / "result.json").write_text(json.dumps({"rounds": callback.rounds}, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "resume" in sys.argv[3:], "overlap" in sys.argv[3:])
