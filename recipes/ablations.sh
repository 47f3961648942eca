#!/usr/bin/env bash
# Ablations of the small model at equal compute (docs/small_model.md, "Ablations"): the same data, initial folder,
# steps, schedule and seed, changing one thing each: PadaLN (the published method) vs direct adding (the pose latent
# added once at the input, the paper's alternative), and with vs without text (every caption dropped).
# Needs the data, the initial folder and the latent cache of recipes/small_model.sh in RUN_DIR. Resumable.
#   recipes/ablations.sh [RUN_DIR] [STEPS]        (default runs/small, 600 steps: about 15 min each on one thread)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/small}
STEPS=${2:-600}
PY=${PYTHON:-.venv/bin/python}
dt() { HF_HUB_OFFLINE=1 "$PY" -m dynamictrl "$@"; }
declare -A VARIANT=(
  [padaln]=""
  [no_text]="--caption-dropout 1.0"
  [direct]="--pose-control-function direct"
)
for name in padaln no_text direct; do
  out="$RUN/ablation/$name"
  if [ ! -f "$out/transformer/config.json" ]; then
    resume=$(ls -d "$out"/checkpoint-* >/dev/null 2>&1 && echo "--resume latest" || true)
    # shellcheck disable=SC2086
    dt train configs/train/small_transformer.yaml --model "$RUN/init" --data-root "$RUN/data/train" \
      --output-dir "$out" --cache-dir "$RUN/cache" --max-steps "$STEPS" --validation-steps 0 ${VARIANT[$name]} $resume
  fi
  dt assemble-model "$RUN/ablation/model_$name" --from "$RUN/init" --transformer "$out/transformer" --overwrite
done
echo "ablation models: $RUN/ablation/model_{padaln,no_text,direct}"
