#!/usr/bin/env bash
# Fit one LDNS model per session on a SLURM cluster with plain CLI calls: array task i fits line i of a list.
#
#   ls /data/000128/sub-*/*.nwb > sessions.txt             # one session (path or URL) per line
#   sbatch --array=1-$(wc -l < sessions.txt) examples/slurm_array.sh sessions.txt models/ [fit options...]
#
# Task i writes models/<session stem>.ldns (atomically: complete or absent) and exits 0 (ok), 2 (an input or
# option error, printed in the summary) or 1 (a bug). The same script runs without SLURM, e.g. to try it or to
# rerun one failed session:
#
#   SLURM_ARRAY_TASK_ID=3 bash examples/slurm_array.sh sessions.txt models/ --preset auto
#
# A preempted task can be continued from its last checkpoint by rerunning it with --resume. SLURM schedules the
# tasks; nwb-ldns adds no scheduler of its own. Adjust the #SBATCH lines to your cluster and session size.
#SBATCH --job-name=nwb-ldns-fit
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=nwb-ldns-fit-%A_%a.out
set -euo pipefail

usage="usage: [SLURM_ARRAY_TASK_ID=I] $0 SESSIONS_LIST OUT_DIR [nwb-ldns fit options...]"
sessions_list=${1:?$usage}
out_dir=${2:?$usage}
shift 2
task=${SLURM_ARRAY_TASK_ID:?"set SLURM_ARRAY_TASK_ID (sbatch --array=1-N does; by hand: SLURM_ARRAY_TASK_ID=1 bash $0 ...)"}

session=$(sed -n "${task}p" "$sessions_list")
if [ -z "$session" ]; then
    echo "Error: $sessions_list has no line $task; submit --array=1-$(wc -l < "$sessions_list")" >&2
    exit 2
fi

# torch uses the cores SLURM gave this task (not every core of the node)
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-$(nproc)}}
# source /path/to/venv/bin/activate   # if nwb-ldns is installed in a virtual environment

echo "task $task: fitting $session into $out_dir"
exec nwb-ldns fit "$session" --out-dir "$out_dir" "$@"
