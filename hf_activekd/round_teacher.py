"""The teacher work of a blocking round on the main process: plan the requests, send them (replaying the answers of
this run already logged), check the answers (row filter, verification), add the annotated rows and write the round's
file. Mixed into :class:`~hf_activekd.rounds.RoundRunner`; :mod:`hf_activekd.overlap` calls :meth:`plan` and
:meth:`fetch` from its background thread."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from transformers.utils import logging

from .annotation import ANNOTATED
from .answer_log import is_generation, replay_plan, request_fingerprint
from .config import ActiveKDConfig
from .distributed import run_on_main_and_broadcast
from .hard_selection import EASY_FOR_STUDENT, choose_hard, keep_counts, selection_stats
from .metrics import EvalReport
from .overlap import InFlightRound, RoundCancelled
from .policy import plan_requests, stable_seed
from .scoring import ScoreFn, score_sharded
from .teachers.base import TeacherRequest, TeacherResponse, generate_with_answers
from .verification import DISAGREEMENT, verify_batches

logger = logging.get_logger(__name__)


def _no_generation() -> dict[str, Any]:
    """The generation stats of a round that generated nothing (``source="annotate"``)."""
    return {
        "tokens_in": 0,
        "tokens_out": 0,
        "cost": 0.0,
        "cache_hits": 0,
        "replayed": 0,
        "failed_requests": 0,
        "generated": True,
        "requested": 0,
        "requests": 0,
        "accepted": 0,
        "dropped": {},
        "faults": {},
        "requested_by_class": {},
        "accepted_by_class": {},
        "reasons": {},
    }


class RoundTeacherWork:
    """What a :class:`~hf_activekd.rounds.RoundRunner` asks of its teacher in a round: generated rows, annotated rows
    or both (``config.source``)."""

    def _score_unlabeled(self, round_index: int, score_fn: ScoreFn) -> tuple[list[int], Any]:
        """This round's candidate unlabeled texts (chosen on the main process) and the student's scores for them
        (computed in shards on every process, gathered)."""
        positions = run_on_main_and_broadcast(lambda: self.annotator.candidates(round_index, self.run_id))
        return positions, score_sharded(score_fn, [self.annotator.texts[i] for i in positions])

    def _generate(
        self,
        report: EvalReport,
        eval_texts: Sequence[str] | None,
        round_index: int,
        scored: tuple[list[int], Any] | None = None,
        write: bool = True,
    ) -> dict[str, Any]:
        """One round's teacher work on the main process: generated rows, annotated rows, or both (``config.source``),
        written to the round's file (unless ``write=False``: the caller selects them first)."""
        start = time.perf_counter()
        generate, annotate = self.config.split_budget()
        if generate:
            config = replace(self.config, samples_per_round=generate) if annotate else self.config
            result = self._generate_rows(report, eval_texts, round_index, config)
        else:
            result = {"rows": [], "stats": _no_generation(), "error": None}
        rows, stats = result["rows"], result["stats"]
        if self.annotator is not None and annotate:
            annotated, more = self.annotator.annotate(
                self.teacher, report, scored, annotate, round_index, self.run_id, self.progress
            )
            rows = rows + annotated
            stats.update(more)
            stats["requests"] += more["annotate_requests"]
            stats["failed_requests"] += more["annotate_failed_requests"]
            stats["requested"] += more["annotate_requested"]
            stats["accepted"] += len(annotated)
            stats["replayed"] += more["annotate_replayed"]
            stats["tokens_in"] += more["annotate_tokens_in"]
            stats["tokens_out"] += more["annotate_tokens_out"]
            stats["cost"] += more["annotate_cost"]
            drops = Counter(stats["dropped"]) + Counter(more["annotate_dropped"])
            stats["dropped"] = {k: drops[k] for k in sorted(drops)}
            accepted = Counter(stats["accepted_by_class"]) + Counter(r["label"] for r in annotated)
            stats["accepted_by_class"] = dict(accepted)
            if stats["requests"] and stats["failed_requests"] == stats["requests"]:
                result["error"] = result["error"] or "every teacher request failed"
            elif result["error"] == "every teacher request failed":
                result["error"] = None  # the labelling requests were answered
        if rows and write:
            self.pool.write_round(round_index, rows)
        stats["source"] = self.config.source
        stats["wall_time_s"] = round(time.perf_counter() - start, 4)
        return {"rows": rows, "stats": stats, "error": result["error"]}

    def _keep_hard(self, result: dict[str, Any], score_fn: ScoreFn, round_index: int) -> dict[str, Any]:
        """Hardness-aware acceptance (``candidate_factor > 1``, see :mod:`hard_selection`): on every process, the
        student scores the round's generated candidates (in shards) and each class keeps its hardest; annotated rows
        stay. Every process reaches the same choice. When the student cannot score them, every row is kept."""
        rows, stats = result["rows"], result["stats"]
        generated = [r for r in rows if r.get("origin") != ANNOTATED]
        if not generated:
            return result
        try:
            probabilities = score_sharded(score_fn, [r["text"] for r in generated])
        except Exception as exc:  # noqa: BLE001 - the teacher's rows are paid for: kept rather than lost
            logger.error(
                "ActiveKD round %d: the student could not score the candidates (%s); all are kept.", round_index, exc
            )
            stats["selection_error"] = f"{type(exc).__name__}: {exc}"
            return result
        keep = keep_counts(stats.get("requested_by_class") or {}, self.config.candidate_factor)
        seed = stable_seed(self.config.seed, "hard", round_index)
        kept, p_true = choose_hard(generated, probabilities, self.label_names, keep, self.config.hard_share, seed)
        chosen = [generated[i] for i in kept]
        rows = [r for r in rows if r.get("origin") == ANNOTATED] + chosen
        easy = len(generated) - len(chosen)
        drops = Counter(stats.get("dropped") or {})
        drops[EASY_FOR_STUDENT] += easy
        stats.update(selection_stats(generated, kept, p_true))
        stats["dropped"] = {k: drops[k] for k in sorted(+drops)}
        stats["accepted"] = len(rows)
        stats["accepted_by_class"] = dict(Counter(r["label"] for r in rows))
        logger.info(
            "ActiveKD round %d: the student kept %d of %d candidates (mean p(label) %.2f kept, %s dropped).",
            round_index,
            len(chosen),
            len(generated),
            stats["student_p_true_kept"] or 0.0,
            stats["student_p_true_dropped"],
        )
        return {**result, "rows": rows, "stats": stats}

    def _generate_rows(
        self, report: EvalReport, eval_texts: Sequence[str] | None, round_index: int, config: ActiveKDConfig
    ) -> dict[str, Any]:
        """The generated part of a blocking round (``config``: its share of the budget); the caller writes the file."""
        start = time.perf_counter()
        return self.fetch(self.plan(report, eval_texts, round_index, config), round_index, start, write=False)

    def plan(
        self,
        report: EvalReport,
        eval_texts: Sequence[str] | None,
        round_index: int,
        config: ActiveKDConfig | None = None,
    ) -> list[TeacherRequest]:
        """The requests of round ``round_index``, from this evaluation's report and the rows generated so far."""
        earlier: dict[str, list[str]] = defaultdict(list)
        for row in self.pool.rows():
            earlier[row["label"]].append(row["text"])
        return plan_requests(report, config or self.config, round_index, eval_texts, earlier)

    def fetch(
        self,
        requests: list[TeacherRequest],
        round_index: int,
        start: float,
        job: InFlightRound | None = None,
        write: bool = True,
    ) -> dict[str, Any]:
        """Send the planned ``requests`` (less the answers of this run and round already logged), check the answers
        and write the accepted rows as the round's file (unless ``write=False``). Returns ``{"rows", "stats",
        "error"}``. ``job``: the background round this runs for (overlap), told of each answer and able to cancel
        the round."""
        fingerprints = {r.key: request_fingerprint(r, self.teacher.name) for r in requests}
        logged = [e for e in self.log.of_run(self.run_id) if e["round"] == round_index and is_generation(e)]
        replayed, to_send, extra = replay_plan(requests, logged, fingerprints)
        if replayed or extra:
            logger.warning(
                "ActiveKD round %d: %d answer(s) of this run were already logged before a restart; they are used, "
                "and %d request(s) are sent.",
                round_index,
                len(replayed) + len(extra),
                len(to_send),
            )
        pending = {r.key: r for r in to_send}
        arrived: dict[str, TeacherResponse] = {}

        def on_answer(response: TeacherResponse) -> None:  # on disk the moment it arrives (crash, kill, Ctrl-C)
            request = pending.get(response.key)
            if request is None or response.key in arrived:
                return
            arrived[response.key] = response
            self.log.append(self.run_id, round_index, request, response, fingerprints[request.key])
            if job is not None:
                job.answered(response)  # raises RoundCancelled once the round was cancelled

        error = None
        try:
            fresh = generate_with_answers(self.teacher, to_send, self.progress, on_answer) if to_send else []
        except RoundCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing teacher must not end training
            if self.config.teacher_on_failure == "raise":
                raise
            logger.error("Teacher %s failed in round %d: %s", self.teacher.name, round_index, exc)
            error = f"{type(exc).__name__}: {exc}"
            fresh = [arrived.get(r.key) or TeacherResponse(key=r.key, error=error) for r in to_send]
        for response in fresh:
            on_answer(response)
        by_key = {r.key: r for r in fresh}
        for key, entry in replayed.items():
            by_key[key] = TeacherResponse.from_dict(entry["response"])
        requests = [r for r in requests if r.key in replayed or r.key in pending]  # the plan less the room made
        for entry in extra:  # answers of this round for classes the new plan does not ask for: used all the same
            requests.append(
                TeacherRequest(
                    key=entry["key"],
                    label=entry["label"],
                    num_samples=int(entry["num_samples"]),
                    reason=entry["reason"],
                )
            )
            by_key[entry["key"]] = TeacherResponse.from_dict(entry["response"])
        replayed_keys = set(replayed) | {e["key"] for e in extra}

        rows: list[dict[str, Any]] = []
        drops: Counter = Counter()
        faults: Counter = Counter()
        accepted_by_class: Counter = Counter()
        requested_by_class: Counter = Counter()
        batches: list[tuple[TeacherRequest, list[dict[str, Any]]]] = []
        stats = {
            "tokens_in": 0,
            "tokens_out": 0,
            "cost": 0.0,
            "cache_hits": 0,
            "replayed": len(replayed_keys),
            "failed_requests": 0,
        }
        for request in requests:
            response = by_key.get(request.key) or TeacherResponse(key=request.key, error="no response")
            requested_by_class[request.label] += request.num_samples
            faults.update(response.faults)
            if response.cached:
                stats["cache_hits"] += 1
            else:  # replayed answers were paid by this run: they count
                stats["tokens_in"] += response.prompt_tokens
                stats["tokens_out"] += response.completion_tokens
                stats["cost"] += response.cost
            if response.error is not None:
                stats["failed_requests"] += 1
                continue
            accepted, dropped = self.filter.accept(request, response.samples, round_index, self.teacher.name)
            batches.append((request, accepted))
            drops.update(dropped)
        if self.config.verify == "teacher":  # the teacher labels each request's accepted rows again, blind
            kept, verified = verify_batches(
                self.teacher, batches, self.label_names, self.config, round_index, self.log, self.run_id, self.progress
            )
            drops[DISAGREEMENT] += sum(len(b[1]) for b in batches) - sum(len(k) for k in kept)
            drops = +drops  # no zero counts
            batches = [(request, rows_kept) for (request, _), rows_kept in zip(batches, kept)]
            stats.update(verified)
            stats["tokens_in"] += verified["verify_tokens_in"]
            stats["tokens_out"] += verified["verify_tokens_out"]
            stats["cost"] += verified["verify_cost"]
        for _, accepted in batches:
            rows.extend(accepted)
            accepted_by_class.update(r["label"] for r in accepted)
        if job is not None:
            job.commit(lambda: self.pool.write_round(round_index, rows) if rows else None)
        elif rows and write:
            self.pool.write_round(round_index, rows)
        if error is None and requests and stats["failed_requests"] == len(requests):
            error = "every teacher request failed"
        wall = time.perf_counter() - start
        stats.update(
            {
                "generated": True,
                "requested": sum(r.num_samples for r in requests),
                "requests": len(requests),
                "accepted": len(rows),
                "dropped": {k: drops[k] for k in sorted(drops)},
                "faults": {k: faults[k] for k in sorted(faults)},
                "requested_by_class": dict(requested_by_class),
                "accepted_by_class": dict(accepted_by_class),
                "reasons": {r.key: r.reason for r in requests},
                "wall_time_s": round(wall, 4),
            }
        )
        logger.info(
            "ActiveKD round %d: requested %d samples in %d requests, accepted %d, dropped %s, %d failed, %.1fs",
            round_index,
            stats["requested"],
            len(requests),
            len(rows),
            dict(drops) or "none",
            stats["failed_requests"],
            wall,
        )
        return {"rows": rows, "stats": stats, "error": error}
