"""Publishing to a local server that speaks the Hub's upload protocol: model, card, plot, and the generated dataset."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from card_testing import all_files_bytes, train_tiny
from hub_server import HubServer
from huggingface_hub import DatasetCard, ModelCard

TOKEN = "hf_dummySECRETpublishToken0123456789"
MODEL_REPO = "tester/tiny-student"
DATA_REPO = "tester/tiny-student-activekd-data"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A fresh local Hub; huggingface_hub, datasets and transformers pointed at it with a dummy token."""
    import datasets.config
    import huggingface_hub.constants
    import huggingface_hub.hf_api
    import transformers.utils.hub

    server = HubServer(token=TOKEN).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # values read once at import time: every Hub URL or template the libraries built from the default endpoint
    for module in (huggingface_hub.constants, datasets.config):
        for name, value in list(vars(module).items()):
            if (
                name.isupper()
                and not name.startswith("_")
                and isinstance(value, str)
                and value.startswith("https://huggingface.co")
            ):
                monkeypatch.setattr(module, name, server.url + value[len("https://huggingface.co") :])
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", server.url)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", server.url)
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)  # rebuilt lazily with the patched endpoint
    yield server
    server.stop()


def _rounds_in(readme: bytes) -> list[int]:
    """Global steps of the rows of the card's per-round table."""
    return [int(m) for m in re.findall(r"^\| \d+(?: ★)? \| (\d+) \|", readme.decode(), flags=re.M)]


def _parquet_rows(content: bytes) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(content)).to_pylist()


def _assert_no_token(hub: HubServer, folder: Path) -> None:
    for name, content in hub.all_uploaded_bytes():
        assert TOKEN.encode() not in content, name
    for name, content in all_files_bytes(folder).items():
        assert TOKEN.encode() not in content, name
    for request in hub.requests:  # the token travels only in the Authorization header
        assert TOKEN.encode() not in request.body, request.path
        assert TOKEN not in request.path


def test_push_to_hub_uploads_model_card_plot_and_dataset(hub, make_trainer, pool_teacher, preprocess):
    trainer, callback = train_tiny(
        make_trainer, pool_teacher, preprocess, hub_model_id=MODEL_REPO, hub_private_repo=True
    )
    trainer.push_to_hub()
    assert hub.unhandled == []
    rows, rounds = callback.runner.pool.rows(), callback.rounds

    # the model repo: weights, card, plot, round records
    model = hub.repo(MODEL_REPO)
    files = model.files
    assert model.private
    assert {"model.safetensors", "config.json", "README.md", "activekd_rounds.png", "activekd/rounds.json"} <= set(
        files
    )
    assert files["activekd_rounds.png"][:8] == b"\x89PNG\r\n\x1a\n"
    readme = files["README.md"]
    card = ModelCard(readme.decode())
    # the Trainer's card with ours inside: every section, metadata, one block
    text = card.text
    for heading in (
        "## Active knowledge distillation",
        "### Teacher",
        "### Key configuration",
        "### Rounds",
        "### Per-class F1, first and last round",
        "### Generated examples",
        "### Inference latency: student and teacher",
        "### Generated data",
        "### How to reproduce",
        "![Metrics and samples per round](activekd_rounds.png)",
        "## Training hyperparameters",
    ):
        assert heading in text, heading
    assert text.count("<!-- hf-activekd:start -->") == 1
    assert _rounds_in(readme) == [r["global_step"] for r in rounds]
    assert f"[{DATA_REPO}]({hub.url}/datasets/{DATA_REPO})" in text
    assert "**not meaningful**" in text  # a PoolTeacher is a simulation
    assert card.data.library_name == "transformers"
    assert {"hf-activekd", "knowledge-distillation", "synthetic-data", "generated_from_trainer"} <= set(card.data.tags)
    assert DATA_REPO in card.data.datasets
    assert {r.metric_name for r in card.data.eval_results} >= {"Accuracy (final)", "Macro-F1 (final)"}
    # the README that went up is the one in output_dir
    assert (Path(trainer.args.output_dir) / "README.md").read_bytes() == readme

    # the dataset repo: every accepted row and its card, private like the model
    data = hub.repo(DATA_REPO, "dataset")
    assert data.private
    shards = [p for p in data.files if p.startswith("data/") and p.endswith(".parquet")]
    assert len(shards) == 1
    pushed = _parquet_rows(data.files[shards[0]])
    assert len(pushed) == len(rows) and set(pushed[0]) == {"text", "label", "round", "reason", "teacher", "origin"}
    assert sorted(r["text"] for r in pushed) == sorted(r["text"] for r in rows)
    dataset_card = DatasetCard(data.files["README.md"].decode())
    assert dataset_card.data.annotations_creators == ["machine-generated"]
    assert dataset_card.data.configs  # what datasets wrote is kept, so load_dataset finds the shards
    assert f"[{MODEL_REPO}]({hub.url}/{MODEL_REPO})" in dataset_card.text
    assert "pool-simulation" in dataset_card.text and "## Rows per class" in dataset_card.text
    per_round = re.findall(r"^\| (\d+) \| \d+ \| \d+ \| (\d+) \|", dataset_card.text, flags=re.M)
    assert {int(r): int(n) for r, n in per_round} == {
        r["round"]: r["accepted"] for r in rounds if r.get("generated") and r["accepted"]
    }

    _assert_no_token(hub, Path(trainer.args.output_dir))
    # every API call was authenticated with the dummy token (so it was really offered to the client)
    assert any(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests)


def test_every_save_pushes_keep_card_and_dataset_current(hub, make_trainer, pool_teacher, preprocess):
    trainer, callback = train_tiny(
        make_trainer,
        pool_teacher,
        preprocess,
        hub_model_id=MODEL_REPO,
        push_to_hub=True,
        hub_strategy="every_save",
        save_strategy="steps",
        save_steps=10,
        callback_kwargs={"dataset_repo_id": "tester/custom-data"},
    )
    trainer.push_to_hub()
    assert hub.unhandled == []
    rounds, rows = callback.rounds, callback.runner.pool.rows()

    readmes = [content for kind, repo, path, content in hub.uploads if repo == MODEL_REPO and path == "README.md"]
    assert len(readmes) >= 2  # at least one checkpoint push and the final push
    steps = [_rounds_in(r) for r in readmes]
    assert steps[0] and len(steps[0]) < len(rounds)  # the first checkpoint push knew only the first rounds
    assert all(len(a) <= len(b) for a, b in zip(steps, steps[1:]))
    assert steps[-1] == [r["global_step"] for r in rounds]
    assert hub.files(MODEL_REPO)["README.md"] == readmes[-1]

    assert ("dataset", "tester/tiny-student-activekd-data") not in hub.repos  # the configured repo was used
    data = hub.repo("tester/custom-data", "dataset")
    shard_versions = [
        content
        for kind, repo, path, content in hub.uploads
        if repo == "tester/custom-data" and path.endswith(".parquet")
    ]
    assert len(shard_versions) >= 2 and len(_parquet_rows(shard_versions[0])) < len(rows)
    (shard,) = [p for p in data.files if p.endswith(".parquet")]
    assert len(_parquet_rows(data.files[shard])) == len(rows)
    assert str(len(rows)) in DatasetCard(data.files["README.md"].decode()).text
    assert "tester/custom-data" in hub.files(MODEL_REPO)["README.md"].decode()
    _assert_no_token(hub, Path(trainer.args.output_dir))


def test_push_without_dataset_leaves_data_local(hub, make_trainer, pool_teacher, preprocess):
    trainer, callback = train_tiny(
        make_trainer,
        pool_teacher,
        preprocess,
        hub_model_id=MODEL_REPO,
        max_steps=10,
        callback_kwargs={"push_dataset": False},
    )
    trainer.push_to_hub()
    assert [key for key in hub.repos if key[0] == "dataset"] == []
    files = hub.files(MODEL_REPO)
    generated = files["activekd/generated.jsonl"].decode().splitlines()
    assert len(generated) == len(callback.runner.pool.rows())
    assert json.loads(generated[0])["teacher"] == "pool-simulation"
    readme = files["README.md"].decode()
    assert "activekd-data" not in readme and 'data_files="activekd/generated.jsonl"' in readme


# --------------------------------------------------------------------------- the dataset follows the model's privacy
def _dataset_creates(hub: HubServer) -> list[str | None]:
    return [asked for kind, repo, asked in hub.creates if kind == "dataset"]


def test_private_existing_model_repo_gets_a_private_dataset(hub, make_trainer, pool_teacher, preprocess):
    from huggingface_hub import HfApi

    HfApi(endpoint=hub.url, token=TOKEN).create_repo(MODEL_REPO, private=True)  # made private earlier, on the Hub
    trainer, _ = train_tiny(make_trainer, pool_teacher, preprocess, hub_model_id=MODEL_REPO, max_steps=10)
    assert trainer.args.hub_private_repo is None  # the default: "the account's default"
    trainer.push_to_hub()
    assert hub.repo(MODEL_REPO).private
    assert hub.repo(DATA_REPO, "dataset").private and _dataset_creates(hub)[0] == "private"


def test_push_to_hub_private_true_gives_a_private_dataset(hub, make_trainer, pool_teacher, preprocess):
    trainer, _ = train_tiny(make_trainer, pool_teacher, preprocess, hub_model_id=MODEL_REPO, max_steps=10)
    trainer.push_to_hub(private=True)
    assert hub.repo(MODEL_REPO).private
    assert hub.repo(DATA_REPO, "dataset").private and _dataset_creates(hub)[0] == "private"


def test_public_model_does_not_force_a_public_dataset(hub, make_trainer, pool_teacher, preprocess):
    trainer, _ = train_tiny(make_trainer, pool_teacher, preprocess, hub_model_id=MODEL_REPO, max_steps=10)
    trainer.push_to_hub()
    assert not hub.repo(MODEL_REPO).private
    assert DATA_REPO in [repo for kind, repo, _ in hub.creates if kind == "dataset"]
    assert "public" not in _dataset_creates(hub)  # created with the account's default, never forced public


def test_unknown_model_visibility_gives_a_private_dataset(hub, make_trainer, pool_teacher, preprocess, caplog):
    trainer, callback = train_tiny(make_trainer, pool_teacher, preprocess, hub_model_id=MODEL_REPO, max_steps=10)
    hub.repo_info_fails = True
    with caplog.at_level("WARNING"):
        trainer.push_to_hub()
    assert hub.repo(DATA_REPO, "dataset").private and _dataset_creates(hub)[0] == "private"
    assert "could not tell whether the model repo" in caplog.text and callback.publisher.last_push_error is None


def test_no_push_into_a_public_dataset_for_a_private_model(hub, make_trainer, pool_teacher, preprocess, caplog):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo(MODEL_REPO, private=True)
    api.create_repo(DATA_REPO, repo_type="dataset", private=False)  # someone made it public earlier
    trainer, callback = train_tiny(make_trainer, pool_teacher, preprocess, hub_model_id=MODEL_REPO, max_steps=10)
    trainer.push_to_hub()
    assert hub.files(DATA_REPO, "dataset") == {}  # nothing went into the public dataset
    assert "is public but the model repo" in callback.publisher.last_push_error
    assert "README.md" in hub.files(MODEL_REPO)  # the model push itself went on
