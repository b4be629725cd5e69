"""A simulation teacher that answers from a labelled pool of real examples.

:class:`PoolTeacher` is *not* an LLM: it answers each request with real, not yet handed out examples of the requested
class, drawn from a pool the user holds back. It costs nothing, which makes it the tool for comparing allocation
policies (how many samples each class should get) before spending teacher tokens, and it is what the benchmarks use.
Records and model cards name it as a simulation.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .base import AnswerHook, GeneratedSample, LabelAnswer, LabelQuery, Teacher, TeacherRequest, TeacherResponse


class PoolTeacher(Teacher):
    """Answers requests with unseen real examples of the requested class.

    Args:
        texts (`Sequence[str]`): The pool's texts.
        labels (`Sequence[str | int]`): Their labels (names, or ids when ``label_names`` is given).
        label_names (`Sequence[str]`, *optional*): Maps integer labels to names.
        seed (`int`, defaults to 0): Seed of the draw order.
        name (`str`, defaults to ``"pool-simulation"``): Name used in records.

    Example:

    ```python
    >>> teacher = PoolTeacher(["card lost", "refund please"], ["lost_card", "refund"])
    >>> teacher.generate([TeacherRequest(key="r0/refund/0", label="refund", num_samples=1)])[0].samples
    [GeneratedSample(text='refund please', label='refund')]
    ```
    """

    is_simulation = True

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[str | int],
        label_names: Sequence[str] | None = None,
        seed: int = 0,
        name: str = "pool-simulation",
    ):
        if len(texts) != len(labels):
            raise ValueError(f"PoolTeacher got {len(texts)} texts but {len(labels)} labels.")
        self.name = name
        self.seed = seed
        by_label: dict[str, list[str]] = defaultdict(list)
        for text, label in zip(texts, labels):
            if label_names is not None and not isinstance(label, str):
                label = label_names[int(label)]
            by_label[str(label)].append(str(text))
        rng = random.Random(seed)
        self._order: dict[str, list[str]] = {}
        for label in sorted(by_label):
            items = list(by_label[label])
            rng.shuffle(items)
            self._order[label] = items
        self._cursor: dict[str, int] = {label: 0 for label in self._order}
        self._true_label = {text.strip(): label for label, items in self._order.items() for text in items}

    @property
    def labels(self) -> list[str]:
        return list(self._order)

    def remaining(self, label: str) -> int:
        """How many examples of ``label`` have not been handed out yet."""
        return len(self._order.get(label, [])) - self._cursor.get(label, 0)

    def generate(
        self, requests: list[TeacherRequest], progress: bool = True, on_answer: AnswerHook | None = None
    ) -> list[TeacherResponse]:
        responses = []
        for request in requests:
            start = time.perf_counter()
            items = self._order.get(request.label)
            if items is None:
                responses.append(
                    TeacherResponse(key=request.key, error=f"label {request.label!r} not in the pool", attempts=1)
                )
                continue
            begin = self._cursor[request.label]
            taken = items[begin : begin + request.num_samples]
            self._cursor[request.label] = begin + len(taken)
            responses.append(
                TeacherResponse(
                    key=request.key,
                    samples=[GeneratedSample(text=t, label=request.label) for t in taken],
                    latency_s=time.perf_counter() - start,
                    attempts=1,
                    error=None if taken else f"pool exhausted for {request.label!r}",
                )
            )
            if on_answer is not None:
                on_answer(responses[-1])
        return responses

    def label(self, queries: list[LabelQuery], progress: bool = False) -> list[LabelAnswer]:
        """Teacher verification, simulated: the pool's true label of each text it holds, `None` (no answer: the row
        stays, unverified) for a text it does not know. An oracle, unlike an LLM, so its agreement rate measures
        how often the rows handed out carry a wrong label (e.g. a noisy subclass), not how reliable a judge is."""
        known = self._true_label
        return [LabelAnswer(q.key, [known.get(str(t).strip()) for t in q.texts], attempts=1) for q in queries]

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": dict(self._cursor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._cursor.update({k: int(v) for k, v in state.get("cursor", {}).items() if k in self._cursor})
