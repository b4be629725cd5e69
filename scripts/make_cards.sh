#!/usr/bin/env bash
# `make cards`: rebuild the example model cards in model_cards/ from the project's own runs.
#   model_cards/demo-bbcnews/      the demo's student card (scripts/demo.sh: embedded SmolLM2 teacher, BBC News)
#   model_cards/pool-banking77/    a policy-benchmark-style run: Banking77 (all 77 intents), the simulated pool
#                                  teacher (real held-back examples), guided allocation, with the same-run baseline
# Each folder gets the card (README.md), its plot and the run's distill_summary.json; the student weights and the
# generated data stay in outputs/ (they are not part of the repository). About 10 + 5 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-outputs/cards}
DATA=${BANKING77:-../shared/data/banking77}
mkdir -p "$OUT"

copy_card() {  # copy_card RUN_DIR CARD_DIR
  mkdir -p "$2"
  cp "$1/README.md" "$1/activekd_rounds.png" "$1/distill_summary.json" "$2/"
  # the card links the plot and the data by paths relative to the student folder: keep the plot beside it
  "$PYTHON" - "$2/distill_summary.json" <<'PY'
import json, sys
path = sys.argv[1]
summary = json.load(open(path))
for key in ("generated_data", "plot", "output_dir"):  # machine-local paths mean nothing in the repository
    if summary.get(key):
        summary[key] = summary[key].rsplit("/", 1)[-1]
if "site-packages" in str(summary.get("student", "")):  # the student shipped on PyPI, not this machine's folder
    summary["student"] = summary["student"].split("site-packages/", 1)[1].split("/", 1)[0] + " (PyPI wheel)"
json.dump(summary, open(path, "w"), indent=2)
PY
}

SKIP_INSTALL=${SKIP_INSTALL:-1} OUT="$OUT/demo" bash scripts/demo.sh
copy_card "$OUT/demo/student" model_cards/demo-bbcnews

if [ -f "$DATA/train.csv" ]; then
  "$PYTHON" -m hf_activekd.cli distill \
    --train-file "$DATA/train.csv" --test-file "$DATA/test.csv" --text-column text --label-column category \
    --seed-per-class 5 --val-per-class 5 --simulate-from rest \
    --num-hidden-layers 2 --max-length 48 --freeze-embeddings \
    --task-description "Classify online banking customer messages by intent." \
    --samples-per-round 385 --max-rounds 4 --patience 0 --allocation guided \
    --eval-steps 100 --learning-rate 3e-4 --max-grad-norm 0 --per-device-train-batch-size 32 --rows-per-batch 16 \
    --baseline --output-dir "$OUT/banking77" --overwrite-output-dir
  copy_card "$OUT/banking77" model_cards/pool-banking77
else
  echo "Banking77 not found at $DATA (set BANKING77=folder with train.csv and test.csv): skipped pool-banking77."
fi
echo "Cards in model_cards/."
