#!/usr/bin/env bash
# The LDNS paper's monkey table (ldns-reference.md 5.1: KL, correlation RMSE, mean/std ISI RMSE, mean ± std over 5
# resamples, plus the real-vs-real floor) on a stand-in for DANDI:000128 (MC_Maze) in the published layout, read
# the paper's way (5 ms bins, -250..+450 ms around movement onset = 140 bins, 182 units, the LDNS split).
# Swap MAZE for the real file to get the table on the recording. Rerunning reuses finished models and samples.
#   COMPARE_MODELS=ldns,psth,lds examples/compare_monkey.sh
set -euo pipefail

OUT=${COMPARE_OUT:-monkey-output}
MODELS=${COMPARE_MODELS:-ldns,psth,lds,lfads,pivae,tndm}
TRIALS=${MONKEY_TRIALS:-1200}
mkdir -p "$OUT"
MAZE="$OUT/maze-fixture-$TRIALS.nwb"
[ -f "$MAZE" ] || python -c "from nwb_ldns.testing import write_mc_maze_like; \
write_mc_maze_like('$MAZE', n_trials=$TRIALS, n_heldin=137, n_heldout=45, n_early_onset=0, seed=0)"

EXTRA=()
# LFADS: the reference preset trains 1000 epochs; here a few minutes on 2 cores, the KL/L2 ramps over the first quarter
LFADS_EPOCHS=${LFADS_EPOCHS:-60}
case ",$MODELS," in *,lfads,*) EXTRA+=(--set "lfads.epochs=$LFADS_EPOCHS" --set "lfads.kl_ramp_epochs=$((LFADS_EPOCHS / 4))"
                                     --set "lfads.l2_ramp_epochs=$((LFADS_EPOCHS / 4))") ;; esac
# pi-VAE: the reference trains 500 epochs; here its label prior on the reach angle where there is one (auto)
PIVAE_EPOCHS=${PIVAE_EPOCHS:-30}
case ",$MODELS," in *,pivae,*) EXTRA+=(--set "pivae.epochs=$PIVAE_EPOCHS") ;; esac
# TNDM: the reference trains 1000 epochs; it decodes the fixture's hand velocity from its relevant factors
TNDM_EPOCHS=${TNDM_EPOCHS:-60}
case ",$MODELS," in *,tndm,*) EXTRA+=(--set "tndm.epochs=$TNDM_EPOCHS" --set "tndm.kl_ramp_epochs=$((TNDM_EPOCHS / 4))"
                                    --set "tndm.l2_ramp_epochs=$((TNDM_EPOCHS / 4))") ;; esac

nwb-ldns compare "$MAZE" --recipe mc_maze --models "$MODELS" --budget default --out "$OUT/compare-monkey" --resume \
  --quiet ${EXTRA[@]+"${EXTRA[@]}"} "$@"
echo "report: $OUT/compare-monkey/report/index.html"
