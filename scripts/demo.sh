#!/usr/bin/env bash
# The main job end to end on the bundled public-domain Bible corpus: install, build vocabularies,
# prepare the data, train a small model for a few minutes, translate the held-out book, print BLEU.
#   MINUTES=30 bash scripts/demo.sh      # train longer (default 5; the schedule is fitted to it)
#   DEMO_DIR=/tmp/demo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
corpus=$PWD/examples/bible
dir=${DEMO_DIR:-demo}
minutes=${MINUTES:-5}
# About a third of an epoch a minute with this model on 2 CPU cores: constant rate for the first 60%
# of the epochs, then halved every tenth of the run (the paper's schedule [3.4], shrunk to fit).
read -r epochs decay_start decay_every < <(awk -v m="$minutes" 'BEGIN { e = m / 3; print e, 0.6 * e, e / 10 }')
mkdir -p "$dir"
cd "$dir"
set -x
s2s vocab --size 8000 "$corpus/train.en.gz" > vocab.en
s2s vocab --size 8000 "$corpus/train.fr.gz" > vocab.fr
s2s prepare --src-vocab vocab.en --tgt-vocab vocab.fr --max-len 50 "$corpus/train.en.gz" "$corpus/train.fr.gz" > train.s2s
s2s prepare --src-vocab vocab.en --tgt-vocab vocab.fr "$corpus/dev.en.gz" "$corpus/dev.fr.gz" > dev.s2s
s2s train train.s2s --valid dev.s2s -o model.pt --force --log train.jsonl \
    --layers 2 --hidden 256 --embedding 256 --batch-size 64 \
    --epochs "$epochs" --decay-start "$decay_start" --decay-every "$decay_every" --max-time "${minutes}m"
gzip -dc "$corpus/dev.en.gz" | s2s translate -m model.pt --beam 5 --no-unk > hyp.fr
gzip -dc "$corpus/dev.fr.gz" > ref.fr
s2s score --ref ref.fr --metrics bleu,chrf hyp.fr
