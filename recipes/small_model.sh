#!/usr/bin/env bash
# The small DynamiCtrl model, from nothing to the pipeline folder bundled as dynamictrl/assets/small_model
# (docs/small_model.md). Every stage is resumable: run this script again after an interruption and it goes on
# where it stopped (synth skips finished clips, train-vae/train resume from their last checkpoint, a finished
# stage is skipped). About 7.2 hours on the 2-core CPU this project is developed on (over issue 10's 150 minutes).
#   recipes/small_model.sh [RUN_DIR]        (default runs/small)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/small}
PY=${PYTHON:-.venv/bin/python}
dt() { HF_HUB_OFFLINE=1 "$PY" -m dynamictrl "$@"; }
resume() { [ -d "$1" ] && ls -d "$1"/checkpoint-* >/dev/null 2>&1 && echo "--resume latest" || true; }

# 1. Data: 800 training clips (seed 0), 48 held-out clips (seed 1000: characters and motions never trained on) and
#    24 held-out characters driven by the real motion of a dance video (seed 2000), 21 frames of 64x64 at 8 fps.
dt synth "$RUN/data/train" --n 800 --seed 0 --frames 21
dt synth "$RUN/data/heldout" --n 48 --seed 1000 --frames 21
if [ -f ../shared/fixtures/media/motion1.mp4 ]; then
  dt synth "$RUN/data/real_motion" --n 24 --seed 2000 --frames 21 --pose-backend mediapipe \
    --motion-video ../shared/fixtures/media/motion1.mp4
fi

# 2. VAE (person-weighted, 2000 steps of 2 windows of 9 frames; one thread: see docs/small_model.md, "Step times").
if [ ! -f "$RUN/vae/vae/config.json" ]; then
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=${VAE_THREADS:-1} dt train-vae configs/train/small_vae.yaml --data-root "$RUN/data/train" \
    --output-dir "$RUN/vae" --eval-every 1000 $(resume "$RUN/vae")
fi

# 3. The initial pipeline folder: trained VAE, tokenizer trained on the captions, frozen random T5, random
#    transformer, the synthetic pose drawing in dynamictrl.json. The bundled model's first 18,000 steps had T5's
#    random attention bias (--text-previous-token-bias 0); step 6 gives it the previous-token head.
if [ ! -f "$RUN/init/model_index.json" ]; then
  dt assemble-model "$RUN/init" --vae "$RUN/vae/vae" --captions "$RUN/data/train/manifest.jsonl" \
    --transformer-config small --pose-render synthetic --text-previous-token-bias 0
fi

# 4. The transformer, with our trainer (latents cached on the fly in RUN/cache), in the three cosine cycles the
#    bundled model had: 1,200 steps (the config), resumed with a 3,600-step schedule, then with a 6,000-step one
#    (27 + 45 min on two threads, then about 45 min more; the bundled model's third cycle began with 400 steps of a
#    7,200-step schedule, from 3,600 to 4,000, before the 6,000-step one).
trained() {  # trained [OUT_DIR]: the steps a finished `dynamictrl train` in OUT_DIR (default RUN/dit) reached
  "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["global_step"])' "${1:-$RUN/dit}/train_result.json" \
    2>/dev/null || echo 0
}
transformer() {
  dt train configs/train/small_transformer.yaml --model "$RUN/init" --data-root "$RUN/data/train" \
    --output-dir "$RUN/dit" --cache-dir "$RUN/cache" "$@"
}
if [ "$(trained)" -lt 1200 ]; then
  # shellcheck disable=SC2046
  transformer $(resume "$RUN/dit")
fi
if [ "$(trained)" -lt 3600 ]; then
  transformer --max-steps 3600 --checkpoint-every 200 --validation-steps 1200 --resume latest
fi
if [ "$(trained)" -lt 6000 ]; then
  transformer --max-steps 6000 --checkpoint-every 200 --validation-steps 0 --resume latest
fi

# 5. Four more cycles, each from the weights before it (6,000, 9,000, 12,000, then 15,000 steps): a fresh optimizer
#    and a 3,000-step cosine from 1.3e-4 (about the rate a 9,000-step schedule has at step 6,000), 22-24 min each on
#    two idle threads once the latents are cached. The bundled model was made this way after the decode became
#    aligned; each cycle cut the x0 error on the validation set (synth --seed 3000) further (docs/small_model.md).
cycle() {  # cycle OUT_DIR FROM_TRANSFORMER [assemble-model options]
  local out=$1 from=$2
  shift 2
  if [ ! -f "$out-start/model_index.json" ]; then
    dt assemble-model "$out-start" --from "$RUN/init" --transformer "$from" --overwrite "$@"
  fi
  if [ "$(trained "$out")" -lt 3000 ]; then
    # shellcheck disable=SC2046
    dt train configs/train/small_transformer.yaml --model "$out-start" --data-root "${CYCLE_DATA:-$RUN/data/train}" \
      --manifest "${CYCLE_MANIFEST:-manifest_mixed.jsonl}" --output-dir "$out" --cache-dir "$RUN/cache" \
      --max-steps 3000 --learning-rate 1.3e-4 --lr-warmup-steps 50 --checkpoint-every 250 --validation-steps 0 \
      $(resume "$out")
  fi
}
cycle "$RUN/dit2" "$RUN/dit/transformer"
cycle "$RUN/dit3" "$RUN/dit2/transformer"
cycle "$RUN/dit4" "$RUN/dit3/transformer"
cycle "$RUN/dit5" "$RUN/dit4/transformer"

# 6. A T5 whose last head attends to the previous token (the same random T5 but for one relative-position bias, so
#    a colour word's output says which noun it names; docs/small_model.md, "Tokenizer and text encoder"), and one
#    more cycle, in which the transformer learns to read it (to 21,000 steps).
cycle "$RUN/dit6" "$RUN/dit5/transformer" --text-previous-token-bias 8

# 7. Backgrounds the world draws rarely: a colour is a plain background only where it stands apart from every
#    colour the character wears, so of the 800 clips' plain backgrounds 16 are white, 19 brown, 23 pink, 31 black
#    (62 blue), and those were the colours the background prompt failed on. Two more cycles, each on the training
#    clips plus plain-background clips, whole and masked: 200 on white, pink, black or brown (seed 4000; to 24,000
#    steps), then 280 more on the other colours (seed 4100), so that every colour is the plain background of 72 to
#    107 of the 1,280 clips (to 27,000). Each cycle was adopted on the validation set by
#    benchmarks/small_model_validation.py (docs/small_model.md).
dt synth "$RUN/data/train_plain" --n 200 --seed 4000 --frames 21 --backgrounds white,pink,black,brown
dt synth "$RUN/data/train_plain2" --n 280 --seed 4100 --frames 21 \
  --backgrounds yellow,orange,brown,red,green,purple,white,blue
mixed=train/manifest_mixed.jsonl,train_plain/manifest_mixed.jsonl  # several manifests train as their merge
CYCLE_DATA="$RUN/data" CYCLE_MANIFEST=$mixed cycle "$RUN/dit7" "$RUN/dit6/transformer" --text-previous-token-bias 8
CYCLE_DATA="$RUN/data" CYCLE_MANIFEST=$mixed,train_plain2/manifest_mixed.jsonl cycle "$RUN/dit8" \
  "$RUN/dit7/transformer" --text-previous-token-bias 8

# 8. The VAE's decoder fine-tuned with a temporal term, the encoder frozen (so the latents, the scaling factor and
#    the transformer trained on them stay as they were): each latent frame's motion spreads over its four frames
#    instead of arriving in the first (docs/small_model.md, "Motion in every frame"). Cycles of 2,000 steps, each
#    from the decoder before it (a fresh AdamW and cosine), about 11 min each on two idle threads: four at the
#    config's temporal weight 10, then two at 30; each spread the motion further.
decoder="$RUN/vae/vae"
for spec in 1:10 2:10 3:10 4:10 5:30 6:30; do
  cycle=${spec%%:*} weight=${spec##*:}
  out="$RUN/vae_decoder$cycle"
  if [ ! -f "$out/vae/config.json" ]; then
    # shellcheck disable=SC2046
    OMP_NUM_THREADS=${DECODER_THREADS:-2} dt train-vae configs/train/small_decoder_vae.yaml --init "$decoder" \
      --temporal-weight "$weight" --data-root "$RUN/data/train" --output-dir "$out" --eval-every 1000 \
      $(resume "$out")
  fi
  decoder="$out/vae"
done

# 9. The final folder (checked to load, at most 40 MB).
dt assemble-model "$RUN/model" --from "$RUN/dit6-start" --transformer "$RUN/dit8/transformer" --vae "$decoder" \
  --overwrite
echo "small model: $RUN/model (bundle it with: rm -rf dynamictrl/assets/small_model && cp -r $RUN/model dynamictrl/assets/small_model)"
