#!/usr/bin/env bash
# The monkey half of LDNS on a stand-in for DANDI:000128 (MC_Maze) written in the published layout: read it the
# paper's way, fit unconditional, angle- and velocity-conditioned models, sample each, and evaluate how well the
# generated spikes carry the requested reach. Swap MAZE for the real file to run it on the recording
# (with --preset monkey instead of tiny, and the budget of the paper).
# Run with the project's venv on PATH (e.g. PATH=.venv/bin:$PATH bash examples/monkey_conditioning.sh).
set -euo pipefail

OUT=${MONKEY_OUT:-monkey-output}
PRESET=${MONKEY_PRESET:-tiny}
BUDGET=(--set autoencoder.epochs=60 --set diffusion.epochs=200)
mkdir -p "$OUT"
MAZE="$OUT/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb"

echo "== 1/5 a 160-trial stand-in in the MC_Maze layout (direction-tuned units, 1 kHz hand velocity)"
python -c "from nwb_ldns.testing import write_mc_maze_like; write_mc_maze_like('$MAZE', n_trials=160, n_heldin=16, n_heldout=4, seed=2)"

echo "== 2/5 inspect: the reader recognises the layout and prints the paper's command"
nwb-ldns inspect "$MAZE" | tail -n 3

echo "== 3/5 fit: unconditional (with the spike-history GLM), reach-angle and hand-velocity models (preset $PRESET)"
nwb-ldns fit "$MAZE" --preset "$PRESET" "${BUDGET[@]}" --spike-history --out "$OUT/none.ldns" --overwrite --quiet
for condition in angle velocity; do
  nwb-ldns fit "$MAZE" --preset "$PRESET" "${BUDGET[@]}" --condition "$condition" --out "$OUT/$condition.ldns" \
    --overwrite --quiet
done

echo "== 4/5 sample: conditions taken from the test trials of the session"
nwb-ldns sample "$OUT/none.ldns" --n 60 --out "$OUT/none.nwb" --overwrite --quiet
nwb-ldns sample "$OUT/none.ldns" --n 60 --out "$OUT/none-history.nwb" --spike-history --overwrite --quiet
nwb-ldns sample "$OUT/angle.ldns" --n 60 --out "$OUT/angle.nwb" --condition "angle=from:$MAZE" --per-trace 4 \
  --overwrite --quiet
nwb-ldns sample "$OUT/velocity.ldns" --n 60 --out "$OUT/velocity.nwb" --condition "velocity=from:$MAZE" \
  --per-trace 4 --overwrite --quiet

echo "== 5/5 evaluate: decoded velocity R^2 and reach-angle error of the conditioned samples"
nwb-ldns evaluate "$MAZE" "$OUT/none.nwb" "$OUT/none-history.nwb" "$OUT/angle.nwb" "$OUT/velocity.nwb" \
  --report "$OUT/report" \
  --json "$OUT/metrics.json" --overwrite | grep -A 6 "decoding"
