"""Spending limits of a teacher: requests, tokens and money over the teacher's lifetime.

A request is sent only after :meth:`TeacherBudget.reserve` accepted it. The reservation holds the request's worst case
(estimated prompt tokens plus ``max_new_tokens``, and the matching cost) until :meth:`TeacherBudget.settle` replaces it
by what the server reported. A request is therefore refused when the tokens (or the cost) already spent plus the worst
case of everything in flight plus its own worst case would go over the limit: the limits are never exceeded, even with
many requests in flight (as long as the prompt-token estimate is not below the server's count), and a request limit
is exact: with ``max_requests=5``, exactly 5 HTTP requests leave, retries included.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Usage:
    """What a teacher spent so far.

    Args:
        requests (`int`): HTTP requests sent (retries and EvoKD analysis calls included).
        prompt_tokens (`int`): Tokens sent, as reported by the server (estimated where it reports none).
        completion_tokens (`int`): Tokens generated.
        cost (`float`): Money spent, from the configured prices per million tokens.
        cache_hits (`int`): Requests answered from the disk cache (nothing sent).
        estimated_tokens (`int`): Part of the tokens that is an estimate (timed-out attempts count at their estimated
            prompt plus ``max_new_tokens``: the server may have generated and billed them).
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cache_hits: int = 0
    estimated_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "cache_hits": self.cache_hits,
            "estimated_tokens": self.estimated_tokens,
        }


@dataclass
class TeacherBudget:
    """Limits on a teacher's lifetime spending; `None` means unlimited.

    Args:
        max_requests (`int`, *optional*): HTTP requests.
        max_total_tokens (`int`, *optional*): Prompt plus completion tokens.
        max_cost (`float`, *optional*): Money (in the unit of the prices).
        price_per_million_input_tokens (`float`, *optional*): Price of a million prompt tokens.
        price_per_million_output_tokens (`float`, *optional*): Price of a million completion tokens.
    """

    max_requests: int | None = None
    max_total_tokens: int | None = None
    max_cost: float | None = None
    price_per_million_input_tokens: float | None = None
    price_per_million_output_tokens: float | None = None
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._reserved_tokens = 0
        self._reserved_cost = 0.0
        self.exhausted_reason: str | None = None

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Cost of a request from the configured prices (0 without prices)."""
        cost = 0.0
        if self.price_per_million_input_tokens:
            cost += prompt_tokens * self.price_per_million_input_tokens / 1e6
        if self.price_per_million_output_tokens:
            cost += completion_tokens * self.price_per_million_output_tokens / 1e6
        return cost

    def reserve(self, prompt_tokens: int, max_new_tokens: int) -> tuple[int, float] | None:
        """Reserve one request with this worst case; returns the reservation, or `None` when the budget refuses.

        On refusal, :attr:`exhausted_reason` says which limit was hit.
        """
        tokens = prompt_tokens + max_new_tokens
        cost = self.cost_of(prompt_tokens, max_new_tokens)
        with self._lock:
            usage = self.usage
            reason = None
            if self.max_requests is not None and usage.requests >= self.max_requests:
                reason = f"max_requests={self.max_requests} reached"
            elif (
                self.max_total_tokens is not None
                and usage.total_tokens + self._reserved_tokens + tokens > self.max_total_tokens
            ):
                reason = f"max_total_tokens={self.max_total_tokens} reached ({usage.total_tokens} used)"
            elif self.max_cost is not None and usage.cost + self._reserved_cost + cost > self.max_cost:
                reason = f"max_cost={self.max_cost} reached ({usage.cost:.6f} spent)"
            if reason is not None:
                self.exhausted_reason = reason
                return None
            usage.requests += 1
            self._reserved_tokens += tokens
            self._reserved_cost += cost
            return tokens, cost

    def settle(
        self, reservation: tuple[int, float], prompt_tokens: int, completion_tokens: int, estimated: bool = False
    ) -> float:
        """Replace a reservation by what the request really used (``estimated``: a worst case, not a count); returns
        its cost."""
        cost = self.cost_of(prompt_tokens, completion_tokens)
        with self._lock:
            if estimated:
                self.usage.estimated_tokens += prompt_tokens + completion_tokens
            self._reserved_tokens -= reservation[0]
            self._reserved_cost -= reservation[1]
            self.usage.prompt_tokens += prompt_tokens
            self.usage.completion_tokens += completion_tokens
            self.usage.cost += cost
        return cost

    def count_cache_hit(self) -> None:
        with self._lock:
            self.usage.cache_hits += 1

    @property
    def exhausted(self) -> bool:
        """Whether a further request would certainly be refused (the request limit, or a limit fully spent)."""
        usage = self.usage
        return (
            (self.max_requests is not None and usage.requests >= self.max_requests)
            or (self.max_total_tokens is not None and usage.total_tokens >= self.max_total_tokens)
            or (self.max_cost is not None and usage.cost >= self.max_cost)
        )

    def state_dict(self) -> dict[str, Any]:
        return self.usage.to_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.usage = Usage(
                requests=int(state.get("requests", 0)),
                prompt_tokens=int(state.get("prompt_tokens", 0)),
                completion_tokens=int(state.get("completion_tokens", 0)),
                cost=float(state.get("cost", 0.0)),
                cache_hits=int(state.get("cache_hits", 0)),
                estimated_tokens=int(state.get("estimated_tokens", 0)),
            )

    def restore_spend(self, spent: dict[str, Any]) -> None:
        """Raise the usage to at least ``spent`` (e.g. the answer log of the run, which also holds the answers that
        arrived after the last checkpoint), field by field."""
        with self._lock:
            usage = self.usage
            usage.requests = max(usage.requests, int(spent.get("requests", 0)))
            usage.prompt_tokens = max(usage.prompt_tokens, int(spent.get("prompt_tokens", 0)))
            usage.completion_tokens = max(usage.completion_tokens, int(spent.get("completion_tokens", 0)))
            usage.cost = max(usage.cost, float(spent.get("cost", 0.0)))
            usage.estimated_tokens = max(usage.estimated_tokens, int(spent.get("estimated_tokens", 0)))
