"""A simulation teacher that answers from a labelled pool of real examples.

:class:`PoolTeacher` is *not* an LLM: it answers each request with real, not yet handed out examples of the requested
class, drawn from a pool the user holds back. It costs nothing, which makes it the tool for comparing allocation
policies (how many samples each class should get) before spending teacher tokens, and it is what the benchmarks use.
Records and model cards name it as a simulation.

With ``label_noise`` and ``junk`` it simulates a *noisy* teacher, for measuring what the safeguards (the quality gate,
harm detection) are worth: a share of the rows is a real text of another class handed out under the requested class
(the realistic failure of a confused teacher, which no text check can see), and another share is junk of the kinds
weak LLMs write (template residue, markup, a looping word, a JSON fragment, an echo of the instructions), from
:func:`junk_text`.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from .base import AnswerHook, GeneratedSample, LabelAnswer, LabelQuery, Teacher, TeacherRequest, TeacherResponse

_JUNK_WORDS = ("tech", "money", "card", "world", "account", "thing", "payment", "new", "bank", "transfer")


def junk_text(rng: random.Random, label: str = "") -> str:
    """One junk "sample" of the kinds weak teachers write, drawn with ``rng`` (deterministic for a seeded one):
    template residue (``{{{{n}}}^2 1} ... {json_example_4} {{``), an HTML fragment, one word looping, a JSON fragment
    (``"text": "...", "label": "..."``), or an echo of the request's instructions."""
    word, other = rng.sample(_JUNK_WORDS, 2)
    n = rng.randint(2, 9)
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(
            (
                f"{{{{{{{{n}}}}}}^{n} 1}} {{{{{{n}}}}}}_{{{{n}}}}}}^{{r}}}}}}}}}}. "
                f"JSON of the class will be like this: {{json_example_{n}}} {{{{",
                f"{{{{example_{n}}}}} {{text}} {{{{label}}}}",
                f"Sentence: {{sentence_{n}}} Label: {{{{{label or word}}}}}",
            )
        )
    if kind == 1:
        tag = rng.choice(("p", "div", "span", "li", "h2"))
        return f"<{tag}>Today the world will have a new thing called {word}...</{tag}>" + rng.choice(("", "<br/>"))
    if kind == 2:
        return " ".join([word] * rng.randint(6, 20))
    if kind == 3:
        return f'"text": "my {word} {other} is not working", "label": "{label or word}"' + rng.choice(("", "},", "}]"))
    return rng.choice(
        (
            f"Here are {n} new examples of the class '{label or word}':",
            f"Write {n} diverse examples of the class {label or word}. Do not copy the examples above.",
            f"Generate {n} new samples as JSON, one per line.",
        )
    )


class PoolTeacher(Teacher):
    """Answers requests with unseen real examples of the requested class.

    Args:
        texts (`Sequence[str]`): The pool's texts.
        labels (`Sequence[str | int]`): Their labels (names, or ids when ``label_names`` is given).
        label_names (`Sequence[str]`, *optional*): Maps integer labels to names.
        seed (`int`, defaults to 0): Seed of the draw order.
        name (`str`, *optional*): Name used in records; defaults to ``"pool-simulation"``, or
            ``"pool-simulation(noise=0.2,junk=0.2)"`` for a noisy teacher.
        label_noise (`float`, defaults to 0.0): Share of the rows that are a real text of *another* class (its next
            unseen one) under the requested class: a confused teacher. No text check can tell them (harm detection,
            ``harm_delta`` and ``on_harm``, is what limits their damage).
        junk (`float`, defaults to 0.0): Share of the rows that are junk (:func:`junk_text`), which the quality gate
            is there to drop. Each row draws its kind with a generator seeded by ``seed`` and the request's key, so a
            noisy teacher answers the same requests the same way.
        judge_noise (`float`, *optional*): Share of the texts to which :meth:`label` (teacher verification) answers
            another of the offered labels than the true one: a judge as unreliable as the writer. Defaults to
            ``label_noise``; 0 makes verification an oracle.

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
        name: str | None = None,
        label_noise: float = 0.0,
        junk: float = 0.0,
        judge_noise: float | None = None,
    ):
        if len(texts) != len(labels):
            raise ValueError(f"PoolTeacher got {len(texts)} texts but {len(labels)} labels.")
        if not (0.0 <= label_noise <= 1.0 and 0.0 <= junk <= 1.0 and label_noise + junk <= 1.0):
            raise ValueError(
                "PoolTeacher needs label_noise and junk in [0, 1] with label_noise + junk <= 1; got "
                f"label_noise={label_noise}, junk={junk}."
            )
        self.label_noise = float(label_noise)
        self.junk = float(junk)
        self.judge_noise = self.label_noise if judge_noise is None else float(judge_noise)
        if not 0.0 <= self.judge_noise <= 1.0:
            raise ValueError(f"PoolTeacher needs judge_noise in [0, 1]; got {judge_noise}.")
        if name is None:
            name = "pool-simulation"
            if label_noise or junk:
                name += f"(noise={label_noise:g},junk={junk:g}"
                name += ")" if judge_noise is None or judge_noise == label_noise else f",judge={judge_noise:g})"
            elif judge_noise:
                name += f"(judge={judge_noise:g})"
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
            if self.label_noise or self.junk:
                taken = self._noisy_answer(request)
            else:
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
        """Teacher verification and annotation, simulated: the pool's true label of each text it holds, `None` (no
        answer: a verified row stays, unverified; an annotated text is dropped) for a text it does not know. With
        ``judge_noise`` that share of the answers is another class among the query's label options (drawn with a
        generator seeded by ``seed``, the query's key and the text), so the agreement rate mixes the writer's errors
        with the judge's, as with an LLM, and annotations are as noisy as generated rows; without it the judge is an
        oracle.
        """
        answers = []
        for query in queries:
            labels = []
            for position, text in enumerate(query.texts):
                label = self._true_label.get(str(text).strip())
                if label is not None and self.judge_noise:
                    rng = random.Random(f"{self.seed}:judge:{query.key}:{position}:{text}")
                    # a class, never "none of these" (an annotation option, see annotation.py): a wrong label
                    others = [option for option in query.label_options if option != label and option in self._order]
                    if others and rng.random() < self.judge_noise:
                        label = rng.choice(others)
                labels.append(label)
            answers.append(LabelAnswer(query.key, labels, attempts=1))
        return answers

    def _take(self, label: str) -> str | None:
        begin = self._cursor[label]
        if begin >= len(self._order[label]):
            return None
        self._cursor[label] = begin + 1
        return self._order[label][begin]

    def _noisy_answer(self, request: TeacherRequest) -> list[str]:
        """The texts for one request: each row is junk, a real text of another class, or a real one of the class."""
        rng = random.Random(f"{self.seed}:{request.key}")
        others = [label for label in self._order if label != request.label]
        texts = []
        for _ in range(request.num_samples):
            u = rng.random()
            text = None
            if u < self.junk:
                text = junk_text(rng, request.label)
            elif u < self.junk + self.label_noise and others:
                for label in rng.sample(others, len(others)):
                    text = self._take(label)
                    if text is not None:
                        break
            if text is None:
                text = self._take(request.label)
            if text is None:
                break
            texts.append(text)
        return texts

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": dict(self._cursor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._cursor.update({k: int(v) for k, v in state.get("cursor", {}).items() if k in self._cursor})
