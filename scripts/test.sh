#!/usr/bin/env bash
# npm test: the unit project and the rig project side by side.
#
# The rig suites spend most of their time waiting on real HA timing, and
# they must not share the CPU with anything that could starve Patroni's or
# etcd's loops. The unit suites (CPU-bound synths) therefore run at the
# lowest priority: they take only the cycles the rig leaves idle, instead of
# taking minutes of their own before the rig starts. Arguments go to both.
set -euo pipefail
cd "$(dirname "$0")/.."

unit_log=$(mktemp)
trap 'rm -f "$unit_log"' EXIT

echo "==> unit suites at nice 19 beside the rig suites (their output follows the rig's)"
nice -n 19 npx jest --selectProjects unit --passWithNoTests "$@" >"$unit_log" 2>&1 &
unit_pid=$!

rig_status=0
npx jest --selectProjects rig --passWithNoTests "$@" || rig_status=$?

unit_status=0
wait "$unit_pid" || unit_status=$?
echo "==> unit suites"
cat "$unit_log"

echo "==> unit suites: $( ((unit_status == 0)) && echo passed || echo "FAILED (exit ${unit_status})")"
echo "==> rig suites: $( ((rig_status == 0)) && echo passed || echo "FAILED (exit ${rig_status})")"
((unit_status == 0 && rig_status == 0))
