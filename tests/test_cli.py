"""The ``hf-activekd`` command line: argument parsing, config files, the distill run end to end on a tiny student, the
embedded teacher's life cycle, and clear errors (exit status 2, one message, no traceback)."""

from __future__ import annotations

import csv
import json
import socket

import pytest
from cli_testing import FAST, _free_port

from hf_activekd import cli
from testing_utils import LABELS, make_texts


def test_main_usage_and_serve_teacher_delegation(monkeypatch, capsys):
    assert cli.main(["--help"]) == 0
    assert "distill" in capsys.readouterr().out
    assert cli.main(["nope"]) == 2
    assert "unknown command" in capsys.readouterr().err
    seen = {}

    def fake_serve_main(argv):
        seen["argv"] = argv
        return 0

    import hf_activekd.server.app

    monkeypatch.setattr(hf_activekd.server.app, "serve_main", fake_serve_main)
    assert cli.main(["serve-teacher", "--port", "0", "--pool", "x.csv"]) == 0
    assert seen["argv"] == ["--port", "0", "--pool", "x.csv"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data-file", "missing.csv"], "Data file not found: missing.csv"),
        (["--data-file", "{data}"], "has no text column 'text'; its columns are ['sentence', 'topic']"),
        (
            [
                "--data-file",
                "{data}",
                "--text-column",
                "sentence",
                "--label-column",
                "topic",
                "--seed-per-class",
                "25",
            ],
            "Too few examples per class for 25 training + 8 validation examples",
        ),
        (
            [
                "--data-file",
                "{data}",
                "--text-column",
                "sentence",
                "--label-column",
                "topic",
                "--teacher-url",
                "{url}",
            ],
            "is unreachable",
        ),
        (
            [
                "--data-file",
                "{data}",
                "--text-column",
                "sentence",
                "--label-column",
                "topic",
                "--simulate-from",
                "rest",
                "--student",
                "{tmp}/no-such-student",
            ],
            "Cannot load the student",
        ),
        (["--train-file", "{data}", "--data-file", "{data}"], "either --data-file"),
    ],
)
def test_clear_errors(tmp_path, capsys, data_csv, student, extra, message):
    url = f"http://127.0.0.1:{_free_port()}"
    argv = [a.format(data=data_csv, url=url, tmp=tmp_path) for a in extra]
    if "--student" not in argv:
        argv += ["--student", student]
    code = cli.main(["distill", *argv, "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("hf-activekd distill: error:")


def test_distill_pool_teacher_end_to_end(tmp_path, capsys, data_csv, student):
    config = tmp_path / "distill.yaml"
    config.write_text(f"data_file: {data_csv}\ntext_column: sentence\nlabel_column: topic\nsamples_per_round: 8\n")
    out = tmp_path / "out"
    argv = ["distill", "--config", str(config), "--student", student, "--seed-per-class", "4", "--val-per-class", "5"]
    argv += ["--test-per-class", "5", "--simulate-from", "rest", "--output-dir", str(out), *FAST]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "round  0 | step     3 | val macro-F1" in stdout and "requested 8, accepted 8" in stdout
    assert "val macro-F1  val acc requested accepted" in stdout  # the final table
    assert "Test: macro-F1" in stdout
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "activekd_rounds.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob("checkpoint-*"))
    assert (out / "activekd" / "round-0000.jsonl").is_file()
    generated = (out / "activekd" / "generated.jsonl").read_text().splitlines()
    assert len(generated) == 16
    summary = json.loads((out / "distill_summary.json").read_text())
    assert summary["rounds"] == 3 and summary["accepted"] == 16 and summary["labels"] == sorted(LABELS)
    assert "test_macro_f1" in summary["test_metrics"]
    card = (out / "README.md").read_text()
    assert "pool-simulation" in card
    # a second run into the same folder needs --overwrite-output-dir
    assert cli.main(argv) == 2
    assert "is not empty" in capsys.readouterr().err


def test_distill_user_splits_http_teacher_and_lora(tmp_path, capsys, student, teacher_server):
    pytest.importorskip("peft")
    train = tmp_path / "train.jsonl"
    val = tmp_path / "val.jsonl"
    for path, n, seed in ((train, 4, 2), (val, 5, 3)):
        texts, labels = make_texts(n, seed=seed)
        path.write_text("".join(json.dumps({"text": t, "label": LABELS[y]}) + "\n" for t, y in zip(texts, labels)))
    out = tmp_path / "out"
    argv = ["distill", "--train-file", str(train), "--validation-file", str(val), "--student", student]
    argv += ["--teacher-url", teacher_server.url, "--lora", "--lora-r", "4", "--samples-per-round", "4"]
    argv += ["--output-dir", str(out), *FAST]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "Data: 4 classes, 16 training, 20 validation examples." in stdout
    assert (out / "adapter_model.safetensors").is_file() and (out / "README.md").is_file()
    rows = [json.loads(line) for line in (out / "activekd" / "generated.jsonl").read_text().splitlines()]
    assert rows and all("activekdmarker" in r["text"] for r in rows)
    assert teacher_server.backend.calls >= 2


def test_embedded_teacher_is_started_and_stopped(tmp_path, capsys, monkeypatch, data_csv, student):
    import hf_activekd.server
    from hf_activekd.server import ScriptedBackend

    started = []

    class FakeTransformersBackend(ScriptedBackend):
        decoding = "scripted"

        def __init__(self, model_path=None):
            super().__init__(model_id="fake-smollm2")
            self.model_path = model_path or "fake"
            started.append(self)

        def load(self):
            pass

    monkeypatch.setattr(hf_activekd.server, "TransformersBackend", FakeTransformersBackend)
    stops = []
    original_stop = cli._EmbeddedTeacher.stop

    def stop(self):
        stops.append(self.server.url)
        original_stop(self)

    monkeypatch.setattr(cli._EmbeddedTeacher, "stop", stop)
    argv = ["distill", "--data-file", data_csv, "--text-column", "sentence", "--label-column", "topic"]
    argv += ["--student", student, "--seed-per-class", "3", "--val-per-class", "3", "--samples-per-round", "4"]
    argv += ["--output-dir", str(tmp_path / "out"), *FAST]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "Embedded teacher served at http://127.0.0.1:" in stdout
    assert len(started) == 1 and started[0].calls >= 1
    assert len(stops) == 1
    with pytest.raises(OSError):  # the server is gone
        socket.create_connection(("127.0.0.1", int(stops[0].rsplit(":", 1)[1])), timeout=1).close()


def test_distill_annotates_an_unlabeled_file_with_the_pool_teacher(tmp_path, capsys, data_csv, student):
    """--unlabeled-file: the texts of the whole table, labels hidden; the pool teacher labels the ones picked (never a
    training or validation text); the rows are marked annotated in the generated data."""
    with open(data_csv, encoding="utf-8") as f:
        truth = {row["sentence"]: row["topic"] for row in csv.DictReader(f)}
    unlabeled = tmp_path / "unlabeled.csv"
    with open(unlabeled, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["message"])
        writer.writerows([t] for t in truth)
    out = tmp_path / "out"
    argv = ["distill", "--data-file", data_csv, "--text-column", "sentence", "--label-column", "topic"]
    argv += ["--student", student, "--seed-per-class", "4", "--val-per-class", "5", "--test-per-class", "5"]
    argv += ["--simulate-from", "rest", "--unlabeled-file", str(unlabeled), "--unlabeled-text-column", "message"]
    argv += ["--samples-per-round", "8", "--output-dir", str(out), *FAST]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "Unlabeled: 100 texts from" in stdout and "(source=annotate)" in stdout
    assert "20 texts of the test split left out" in stdout
    rows = [json.loads(x) for x in (out / "activekd" / "generated.jsonl").read_text().splitlines()]
    assert len(rows) == 16 and {r["origin"] for r in rows} == {"annotated"}
    assert all(r["label"] == truth[r["text"]] for r in rows)  # the teacher's (the pool's true) labels
    test_texts = set(cli._prepare_data(*cli.parse_distill_args(argv[1:]))["splits"]["test"]["text"])
    assert len(test_texts) == 20 and not test_texts & {r["text"] for r in rows}  # the test split is never trained on
    rounds = json.loads((out / "activekd" / "rounds.json").read_text())
    assert [r.get("annotated") for r in rounds[:2]] == [8, 8]
    assert rounds[0]["annotate_scored"] == 120 - 4 * 4 - 4 * 5 - 4 * 5

    code = cli.main(
        ["distill", "--data-file", data_csv, "--text-column", "sentence", "--label-column", "topic"]
        + ["--student", student, "--source", "annotate", "--simulate-from", "rest"]
        + ["--output-dir", str(tmp_path / "out2")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--unlabeled-file" in err and "Traceback" not in err
