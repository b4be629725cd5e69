"""Shared fixtures: a tiny offline tokenizer and student, a Trainer factory, and the project's own teacher server."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


from cli_testing import _write_csv  # noqa: E402

from testing_utils import build_trainer, make_dataset, make_model, make_pool_teacher, make_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def datasets_small(tokenizer):
    """(train, validation): 8 and 10 examples per class of 4 topic classes, tokenized, with text and label columns."""
    return make_dataset(tokenizer, 8, seed=1), make_dataset(tokenizer, 10, seed=2)


@pytest.fixture
def pool_teacher():
    return make_pool_teacher()


@pytest.fixture
def make_trainer(tmp_path, tokenizer, datasets_small):
    """Build a Trainer on the tiny student: ``make_trainer(**training_args_overrides)``."""

    def build(model=None, train=None, eval_dataset="default", output_dir=None, **overrides):
        train_ds, val_ds = datasets_small
        return build_trainer(
            tokenizer,
            output_dir or tmp_path / "out",
            model=model,
            train=train if train is not None else train_ds,
            eval_dataset=val_ds if eval_dataset == "default" else eval_dataset,
            **overrides,
        )

    return build


@pytest.fixture
def preprocess(tokenizer):
    return lambda rows: tokenizer(rows["text"], truncation=True)


@pytest.fixture
def teacher_server():
    """The project's TGI-protocol server with the scripted backend (valid answers with marker words)."""
    from hf_activekd.server import ScriptedBackend, TeacherServer

    server = TeacherServer(ScriptedBackend()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A tiny saved student folder (tokenizer and model), for the command line."""
    folder = tmp_path_factory.mktemp("student")
    make_tokenizer(folder)
    make_model().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    """A CSV of 30 labelled texts per class, in columns ``sentence`` and ``topic``."""
    return _write_csv(tmp_path_factory.mktemp("data") / "data.csv", 30, seed=1)


@pytest.fixture
def serve():
    """Start teacher servers: ``serve(backend=None, **server_kwargs)`` (scripted by default); all stop at the end."""
    from hf_activekd.server import ScriptedBackend, TeacherServer

    servers = []

    def start(backend=None, **kwargs) -> TeacherServer:
        server = TeacherServer(backend or ScriptedBackend(), **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
