#!/usr/bin/env bash
# npm test: the unit project, the rig-beside project and the rig project side by side.
#
# The rig suites spend most of their time waiting on real HA timing, and
# they must not share the CPU with anything that could starve Patroni's or
# etcd's loops. So only the rig project (the cluster suite) runs at normal
# priority; the rig-beside project (the rotation and upgrade suites' rigs and
# the suites with no cluster) runs at nice 10 and the unit suites (CPU-bound
# synths) at nice 19: they take the cycles the cluster rig leaves idle,
# instead of minutes of their own. Arguments go to every lane.
set -euo pipefail
cd "$(dirname "$0")/.."

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "==> unit suites at nice 19 and the rig-beside suites at nice 10, beside the rig suites (their output follows the rig's)"
nice -n 19 npx jest --selectProjects unit --passWithNoTests "$@" >"$logs/unit" 2>&1 &
unit_pid=$!
nice -n 10 npx jest --selectProjects rig-beside --passWithNoTests "$@" >"$logs/beside" 2>&1 &
beside_pid=$!

rig_status=0
npx jest --selectProjects rig --passWithNoTests "$@" || rig_status=$?

beside_status=0
wait "$beside_pid" || beside_status=$?
echo "==> rig-beside suites"
cat "$logs/beside"

unit_status=0
wait "$unit_pid" || unit_status=$?
echo "==> unit suites"
cat "$logs/unit"

verdict() { (($1 == 0)) && echo passed || echo "FAILED (exit $1)"; }
echo "==> unit suites: $(verdict "$unit_status")"
echo "==> rig-beside suites: $(verdict "$beside_status")"
echo "==> rig suites: $(verdict "$rig_status")"
((unit_status == 0 && beside_status == 0 && rig_status == 0))
