#!/usr/bin/env bash
# The GPU checks of issues 15 and 16 as one call on a lent GPU machine (an NVIDIA H200 here), sized to its
# lease of ~15 minutes all told. Run from the repository root; results go to $OUT (default /tmp/gpu-out):
#   machine.txt       the GPU, driver, torch
#   bench-train.md    bench/train_speed.py on the GPU: the paper's 4x1000 model (160k/80k vocabularies,
#                     batch 128) and config a, fp32 and bf16, with and without attention: tok/s, words/s
#                     (source + target, as the paper's 6,300) and peak GPU memory (issue 16, item 5)
#   table1.md/.err    experiments/table1.py at a larger scale: the paper's layer sizes (4x1000, 1000-d
#                     embeddings, batch 128), six models trained side by side (--jobs 6) for MODEL_TIME each
#   t1gpu.tgz         that run's directory without models and prepared data: logs, hypotheses, scores, figures;
#                     a run cut short after its decodes is finished on a CPU with the same command (no model needed
#                     for the scores; the driver makes Figure 2, which needs one, right after training)
# Knobs (environment): BENCH_S, TABLE_S (time limits, s), MODEL_TIME (each model's budget), TRAIN_OPTS,
# TEST_LINES (0: all), DEVICE (cuda; cpu for a smoke run), RUN (the run directory), PY (python).
set -u
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
RUN=${RUN:-/tmp/t1gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
    echo "cpus $(nproc)"
} > "$OUT/machine.txt" 2>&1

timeout "${BENCH_S:-80}" $PY bench/train_speed.py --configs c,a --device "${DEVICE:-cuda}" --batches 20 \
    --attention general \
    > "$OUT/bench-train.md" 2> "$OUT/bench-train.err"
echo "bench rc $? after $(( $(date +%s) - start )) s" >> "$OUT/bench-train.err"

timeout "${TABLE_S:-420}" $PY experiments/table1.py --data examples/docs --model-time "${MODEL_TIME:-100s}" \
    --jobs 6 --threads 2 --lr 0.001 --test-lines "${TEST_LINES:-0}" \
    --train-opts "${TRAIN_OPTS:---layers 4 --hidden 1000 --embedding 1000 --batch-size 128}" --out "$RUN" \
    > "$OUT/table1.md" 2> "$OUT/table1.err"
echo "table1 rc $? after $(( $(date +%s) - start )) s" >> "$OUT/table1.err"

tar czf "$OUT/t1gpu.tgz" -C "$RUN" --exclude='*.pt' --exclude='*.s2s' --exclude='*.lock' --exclude='*.tmp' .
echo "done after $(( $(date +%s) - start )) s" >> "$OUT/table1.err"
