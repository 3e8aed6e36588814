#!/usr/bin/env bash
# The LDNS paper's model table (KL, correlation RMSE, mean/std ISI RMSE; mean ± std over 5 resamples, plus the
# real-vs-real floor) on the Lorenz demo session: every model fitted on the same NWB file, sampled into NWB and
# scored against the held-out test trials. Rerunning it reuses every finished model and sample (--resume), so
# adding a model to COMPARE_MODELS fits only that one.
#   COMPARE_MODELS=ldns,psth,lds,lfads LFADS_EPOCHS=60 examples/compare_lorenz.sh
set -euo pipefail

OUT=${COMPARE_OUT:-demo}
MODELS=${COMPARE_MODELS:-ldns,psth,lds}
mkdir -p "$OUT"
[ -f "$OUT/lorenz.nwb" ] || nwb-ldns convert lorenz "$OUT/lorenz.nwb" --trials 500

EXTRA=()
case ",$MODELS," in *,lfads,*) EXTRA+=(--set "lfads.epochs=${LFADS_EPOCHS:-60}") ;; esac
case ",$MODELS," in *,pivae,*) EXTRA+=(--set "pivae.epochs=${PIVAE_EPOCHS:-60}") ;; esac

nwb-ldns compare "$OUT/lorenz.nwb" --models "$MODELS" --budget default --out "$OUT/compare-lorenz" --resume \
  --quiet ${EXTRA[@]+"${EXTRA[@]}"} "$@"
echo "report: $OUT/compare-lorenz/report/index.html"
