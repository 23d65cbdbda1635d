#!/usr/bin/env bash
# npm test: the rig project in front, the rig-beside and unit projects behind it.
#
# The rig suites spend most of their time waiting on real HA timing, and
# they must not share the CPU with anything that could starve Patroni's or
# etcd's loops. So only the rig project (the cluster and rotation suites)
# runs at normal priority. Beside it, one after the other so that only one
# of them competes at a time: the rig-beside project (the upgrade suite's rig
# and the suites with no cluster) at nice 10, then the unit suites (CPU-bound
# synths) at nice 19. They take the cycles the rig leaves idle, instead of
# minutes of their own. Arguments go to every project.
set -euo pipefail
cd "$(dirname "$0")/.."

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "==> beside the rig suites: the rig-beside suites at nice 10, then the unit suites at nice 19 (their output follows the rig's)"
(
  status=0
  nice -n 10 npx jest --selectProjects rig-beside --passWithNoTests "$@" >"$logs/beside" 2>&1 || status=$?
  echo "$status" >"$logs/beside.status"
  status=0
  nice -n 19 npx jest --selectProjects unit --passWithNoTests "$@" >"$logs/unit" 2>&1 || status=$?
  echo "$status" >"$logs/unit.status"
) &
behind_pid=$!

rig_status=0
npx jest --selectProjects rig --passWithNoTests "$@" || rig_status=$?

wait "$behind_pid"
beside_status=$(cat "$logs/beside.status")
unit_status=$(cat "$logs/unit.status")
echo "==> rig-beside suites"
cat "$logs/beside"
echo "==> unit suites"
cat "$logs/unit"

verdict() { (($1 == 0)) && echo passed || echo "FAILED (exit $1)"; }
echo "==> unit suites: $(verdict "$unit_status")"
echo "==> rig-beside suites: $(verdict "$beside_status")"
echo "==> rig suites: $(verdict "$rig_status")"
((unit_status == 0 && beside_status == 0 && rig_status == 0))
