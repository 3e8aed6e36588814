#!/usr/bin/env bash
# The LDNS paper's model table (KL, correlation RMSE, mean/std ISI RMSE; mean ± std over 5 resamples, plus the
# real-vs-real floor) on the Lorenz demo session: every model fitted on the same NWB file, sampled into NWB and
# scored against the held-out test trials. Rerunning it reuses every finished model and sample (--resume), so
# adding a model to COMPARE_MODELS fits only that one.
#   COMPARE_MODELS=ldns,psth,lds examples/compare_lorenz.sh
set -euo pipefail

OUT=${COMPARE_OUT:-demo}
MODELS=${COMPARE_MODELS:-ldns,psth,lds,lfads,pivae}
mkdir -p "$OUT"
[ -f "$OUT/lorenz.nwb" ] || nwb-ldns convert lorenz "$OUT/lorenz.nwb" --trials 500

EXTRA=()
# LFADS: the reference preset trains 1000 epochs; here a few minutes on 2 cores, the KL/L2 ramps over the first quarter
LFADS_EPOCHS=${LFADS_EPOCHS:-100}
case ",$MODELS," in *,lfads,*) EXTRA+=(--set "lfads.epochs=$LFADS_EPOCHS" --set "lfads.kl_ramp_epochs=$((LFADS_EPOCHS / 4))"
                                     --set "lfads.l2_ramp_epochs=$((LFADS_EPOCHS / 4))") ;; esac
# pi-VAE: the reference trains 500 epochs; here its label prior on the reach angle where there is one (auto)
PIVAE_EPOCHS=${PIVAE_EPOCHS:-30}
case ",$MODELS," in *,pivae,*) EXTRA+=(--set "pivae.epochs=$PIVAE_EPOCHS") ;; esac

nwb-ldns compare "$OUT/lorenz.nwb" --models "$MODELS" --budget default --out "$OUT/compare-lorenz" --resume \
  --quiet ${EXTRA[@]+"${EXTRA[@]}"} "$@"
echo "report: $OUT/compare-lorenz/report/index.html"
