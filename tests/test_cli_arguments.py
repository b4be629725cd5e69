"""``distill`` arguments: flags, config files (YAML or JSON) and flags overriding them."""

from __future__ import annotations

import json

import pytest

from hf_activekd.cli import CLIError, parse_distill_args


def test_parse_flags_and_config_files(tmp_path):
    args, config = parse_distill_args(["--data-file", "d.csv", "--seed-per-class", "4", "--samples_per_round", "12"])
    assert (args.data_file, args.seed_per_class, config.samples_per_round) == ("d.csv", 4, 12)
    assert args.student is None and not args.lora and config.allocation == "guided"
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "data_file: x.csv\nsamples-per-round: 7\nallocation: uniform\nlora: true\nlabel_column: cat\n"
    )
    args, config = parse_distill_args(["--config", str(yaml_file), "--samples-per-round", "9"])
    assert args.data_file == "x.csv" and args.lora and config.allocation == "uniform"
    assert config.samples_per_round == 9  # the flag overrides the file
    assert config.label_column == "cat"
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"train_file": "t.jsonl", "validation_file": "v.jsonl", "max_rounds": 3}))
    args, config = parse_distill_args([f"--config={json_file}"])
    assert (args.train_file, args.validation_file, config.max_rounds) == ("t.jsonl", "v.jsonl", 3)
    bad = tmp_path / "bad.yaml"
    bad.write_text("samples_per_rounds: 3\n")
    with pytest.raises(CLIError, match=r"Unknown option\(s\) in .*samples_per_rounds"):
        parse_distill_args(["--config", str(bad)])
    with pytest.raises(CLIError, match="samples_per_round must be >= 1"):
        parse_distill_args(["--samples-per-round", "0"])
