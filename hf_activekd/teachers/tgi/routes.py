"""The two routes a request can take: ``chat_completion`` with a JSON ``response_format``, or ``text_generation``
with a JSON ``grammar`` (for servers without the chat route), and the token counts of each."""

from __future__ import annotations

from typing import Any


def messages_to_prompt(messages: list[dict[str, Any]]) -> str:
    """The tokenizer-free prompt used on the ``text_generation`` route: role-prefixed blocks, then ``Assistant:``.

    ```
    System: <system message>

    User: <user message>

    Assistant:
    ```
    """
    blocks = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n\n".join(blocks + ["Assistant:"])


def _estimate_tokens(text: str) -> int:
    """A conservative token estimate (one token per 3 characters) for reservations and servers without usage."""
    return len(text) // 3 + 1 if text else 0


async def send_request(
    client: Any,
    messages: list[dict[str, Any]],
    schema: dict[str, Any] | None,
    max_new_tokens: int,
    temperature: float | None,
    seed: int,
    via_chat: bool,
) -> tuple[str, int, int]:
    """One HTTP request; returns ``(text, prompt_tokens, completion_tokens)``."""
    if via_chat:
        output = await client.chat_completion(
            messages,
            response_format={"type": "json_object", "value": schema} if schema else None,
            max_tokens=int(max_new_tokens),
            temperature=temperature,
            seed=int(seed),
        )
        choices = getattr(output, "choices", None) or []
        text = (choices[0].message.content if choices and choices[0].message else None) or ""
        usage = getattr(output, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if prompt_tokens is None:
            prompt_tokens = sum(_estimate_tokens(str(m.get("content", ""))) for m in messages)
        if completion_tokens is None:
            completion_tokens = _estimate_tokens(text)
        return text, int(prompt_tokens), int(completion_tokens)
    prompt = messages_to_prompt(messages)
    sampling = temperature is not None and temperature > 0
    output = await client.text_generation(
        prompt,
        grammar={"type": "json", "value": schema} if schema else None,
        details=True,
        decoder_input_details=True,
        max_new_tokens=int(max_new_tokens),
        do_sample=sampling,
        temperature=temperature if sampling else None,
        seed=int(seed),
        return_full_text=False,
    )
    if isinstance(output, str):
        return output, _estimate_tokens(prompt), _estimate_tokens(output)
    text = output.generated_text or ""
    details = output.details
    completion_tokens = getattr(details, "generated_tokens", None) if details else None
    prefill = getattr(details, "prefill", None) if details else None
    prompt_tokens = len(prefill) if prefill else _estimate_tokens(prompt)
    return text, int(prompt_tokens), int(completion_tokens if completion_tokens is not None else 0)
