#!/usr/bin/env bash
# The main job end to end on the bundled public-domain Bible corpus: install, build vocabularies,
# prepare the data, train a small model for a few minutes, translate the held-out book, print BLEU.
#   MAX_TIME=10m bash scripts/demo.sh     # train longer (default 5m)
#   DEMO_DIR=/tmp/demo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
corpus=$PWD/examples/bible
dir=${DEMO_DIR:-demo}
max_time=${MAX_TIME:-5m}
mkdir -p "$dir"
cd "$dir"
set -x
s2s vocab --size 10000 "$corpus/train.en.gz" > vocab.en
s2s vocab --size 10000 "$corpus/train.fr.gz" > vocab.fr
s2s prepare --src-vocab vocab.en --tgt-vocab vocab.fr --max-len 60 "$corpus/train.en.gz" "$corpus/train.fr.gz" > train.s2s
s2s prepare --src-vocab vocab.en --tgt-vocab vocab.fr "$corpus/dev.en.gz" "$corpus/dev.fr.gz" > dev.s2s
s2s train train.s2s --valid dev.s2s -o model.pt --force --log train.jsonl \
    --layers 2 --hidden 256 --embedding 256 --batch-size 64 --lr 0.7 --epochs 6 --decay-start 4 \
    --max-time "$max_time"
gzip -dc "$corpus/dev.en.gz" | s2s translate -m model.pt --beam 5 > hyp.fr
gzip -dc "$corpus/dev.fr.gz" > ref.fr
s2s score --ref ref.fr --metrics bleu,chrf hyp.fr
