"""Harm detection inside a real Trainer: a round of wrong-labelled rows lowers validation macro-F1, is set aside, and
its rows leave the training batches."""

from __future__ import annotations

import json

from transformers import TrainerCallback

from hf_activekd import ActiveKDCallback, ActiveKDConfig, GeneratedSample, Teacher, TeacherResponse
from testing_utils import LABELS, MARKER, make_texts


class FlippingTeacher(Teacher):
    """Answers nothing, except in ``bad_round``, where every row is a text of another class under the requested label
    (with the marker word, so that the tests see where its rows go)."""

    name = "flipping"

    def __init__(self, bad_round: int):
        self.bad_round = bad_round
        self.calls = 0
        texts, labels = make_texts(40, seed=11, noise=0.0)
        self.by_class = {
            name: [f"{MARKER} {t}" for t, y in zip(texts, labels) if y == i] for i, name in enumerate(LABELS)
        }

    def generate(self, requests, progress=True):
        round_index, self.calls = self.calls, self.calls + 1
        out = []
        for request in requests:
            samples = []
            if round_index == self.bad_round:
                other = LABELS[(LABELS.index(request.label) + 1) % len(LABELS)]
                samples = [
                    GeneratedSample(self.by_class[other].pop(), request.label) for _ in range(request.num_samples)
                ]
            out.append(TeacherResponse(key=request.key, samples=samples))
        return out


class MarkerRowsByStep(TrainerCallback):
    """The number of marker rows in the training forward pass of each step."""

    def __init__(self, model, marker_id: int):
        self.marker_id = marker_id
        self.step = 0
        self.by_step: dict[int, int] = {}
        model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def on_step_begin(self, args, state, control, **kwargs):
        self.step = state.global_step + 1

    def _hook(self, module, args, kwargs):
        if module.training:
            ids = kwargs["input_ids"]
            self.by_step[self.step] = self.by_step.get(self.step, 0) + int((ids == self.marker_id).any(dim=-1).sum())


def test_a_harmful_round_is_set_aside_and_leaves_training(make_trainer, preprocess, tokenizer):
    trainer = make_trainer(
        max_steps=60,
        eval_steps=10,
        logging_steps=10,
        save_strategy="steps",
        save_steps=10,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
    )
    config = ActiveKDConfig(
        samples_per_round=64, samples_per_request=16, rows_per_batch=16, patience=0, allocation="uniform"
    )
    teacher = FlippingTeacher(bad_round=2)  # rows generated after the evaluation at step 30
    callback = ActiveKDCallback(trainer, teacher, config, preprocess=preprocess)
    trainer.add_callback(callback)
    seen = MarkerRowsByStep(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.add_callback(seen)
    trainer.train()

    rounds = callback.rounds
    assert rounds[2]["accepted"] == 64
    harmed = [r for r in rounds if r.get("set_aside_rounds")]
    assert len(harmed) == 1, [(r["round"], r["macro_f1"]) for r in rounds]
    decision = harmed[0]
    assert 2 in decision["set_aside_rounds"] and decision["set_aside_rows"] == 64
    assert decision["harm"]["drop"] > config.harm_delta and decision["harm"]["best_round"] <= 2
    assert json.loads((callback.output_dir / "rounds.json").read_text())[decision["round"]]["set_aside_rounds"]
    assert (callback.output_dir / "round-0002.jsonl.set-aside").exists()
    assert not (callback.output_dir / "round-0002.jsonl").exists()

    step = decision["global_step"]
    assert sum(n for s, n in seen.by_step.items() if 30 < s <= step) > 0  # the wrong rows were trained on
    # After the decision (taken in the evaluation at the end of its step) no row of the round reaches a training batch.
    late = {s: n for s, n in seen.by_step.items() if s > step and n}
    assert max(seen.by_step) == 60 and late == {}
    logged = [h for h in trainer.state.log_history if "activekd/set_aside_rows" in h]
    assert [h["activekd/set_aside_rows"] for h in logged] == [64]

    # The card says what was set aside, and which round's weights are kept (the best checkpoint's).
    card = (callback.output_dir.parent / "README.md").read_text()
    assert f"the 64 rows of round(s) {', '.join(map(str, decision['set_aside_rounds']))}" in card
    assert "were set aside for the rest of training" in card
    best = next(r for r in rounds if f"checkpoint-{r['global_step']}" in trainer.state.best_model_checkpoint)
    assert f"the evaluation of round {best['round']}), loaded at the end of training" in card


def test_harm_blames_only_rows_that_arrived_before_the_evaluation():
    from hf_activekd.harm import detect_harm

    def record(i, step, arrived, accepted=8):
        return {
            "round": i,
            "global_step": step,
            "requested_at_step": step,
            "arrived_at_step": arrived,
            "accepted": accepted,
        }

    # overlap: round 1 (asked at 10) arrived at 13 and was trained on before evaluation 20; round 2 (asked at 20)
    # arrived only when evaluation 30 waited for it (at step 30): not trained on, not a suspect
    rounds = [record(0, 5, 8), record(1, 10, 13), record(2, 20, 30)]
    harm = detect_harm(rounds, 0.2, 0.6, 1, 3, True, 0.02, global_step=30)
    assert harm["rounds"] == [1]
    # round 0 arrived after the best evaluation (round 1, step 10) only when it was waited for there: a suspect
    rounds = [record(0, 5, 10), record(1, 10, 12), record(2, 20, None, accepted=0)]  # round 2 still in flight
    assert detect_harm(rounds, 0.2, 0.6, 1, 3, True, 0.02, global_step=30)["rounds"] == [0, 1]
    # blocking records (both steps the evaluation's): the rounds from the best one on, as before
    rounds = [record(0, 5, 5), record(1, 10, 10), record(2, 20, 20)]
    assert detect_harm(rounds, 0.2, 0.6, 1, 3, True, 0.02, global_step=30)["rounds"] == [1, 2]
