#!/bin/bash
# The rig's stand-in for amazon-ssm-agent, run as a service inside one node.
# Like the real agent it polls for commands over the node's own network link
# (a cut link means nothing is delivered) and reports each step back the same
# way, retrying while the link is down. Each aws:runShellScript step runs as
# `sh _script.sh` in its own orchestration directory, bounded by its timeout.
#
# Environment: RIG_SSM_ENDPOINT (the rig's local AWS endpoint), RIG_INSTANCE_ID,
# RIG_SSM_WORK_DIR (default /var/lib/amazon/ssm/<instance id>/document/orchestration).
set -euo pipefail

: "${RIG_SSM_ENDPOINT:?RIG_SSM_ENDPOINT must name the rig endpoint}"
: "${RIG_INSTANCE_ID:?RIG_INSTANCE_ID must name this instance}"
WORK_DIR=${RIG_SSM_WORK_DIR:-/var/lib/amazon/ssm/${RIG_INSTANCE_ID}/document/orchestration}
COMMAND_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A report is retried this many times, 5 s apart, while the endpoint is unreachable.
REPORT_ATTEMPTS=120

log() { printf '%s rig-ssm-agent: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

# post_report JSON_FILE: delivers one report; a lost link delays it, a refused one is dropped.
post_report() {
  local body=$1 attempt code
  for ((attempt = 1; attempt <= REPORT_ATTEMPTS; attempt++)); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
      -H 'content-type: application/json' --data-binary "@${body}" \
      "${RIG_SSM_ENDPOINT}/rig-ssm-agent/report" 2>/dev/null) || code=000
    case $code in
      200) return 0 ;;
      4??)
        log "the endpoint refused report ${body} (HTTP ${code})"
        return 0
        ;;
    esac
    sleep 5
  done
  log "gave up delivering report ${body} after ${REPORT_ATTEMPTS} attempts"
}

# report DIR STEP STATUS [CODE]: the step's status, with its output once it ended.
report() {
  local dir=$1 step=$2 status=$3 code=${4:--1}
  local body="${dir}/${step}.${status}.json"
  jq -n --arg instanceId "$RIG_INSTANCE_ID" --arg commandId "$(basename "$dir")" \
    --arg step "$step" --arg status "$status" --argjson responseCode "$code" \
    --rawfile stdout <(cat "${dir}/${step}/stdout" 2>/dev/null || true) \
    --rawfile stderr <(cat "${dir}/${step}/stderr" 2>/dev/null || true) \
    '{$instanceId, $commandId, $step, $status, $responseCode, $stdout, $stderr}' >"$body"
  post_report "$body"
  [[ $status == InProgress ]] || touch "${dir}/${step}/reported"
}

# run_step DIR INDEX: runs one step; prints its status and exit code.
run_step() {
  local dir=$1 index=$2 step timeout workdir code=0
  step=$(jq -r ".steps[${index}].name" "${dir}/message.json")
  timeout=$(jq -r ".steps[${index}].timeoutSeconds" "${dir}/message.json")
  mkdir -p "${dir}/${step}"
  jq -r ".steps[${index}].script" "${dir}/message.json" >"${dir}/${step}/_script.sh"
  workdir=$(jq -r ".steps[${index}].workingDirectory // empty" "${dir}/message.json")
  local -a environment
  mapfile -t environment < <(jq -r '.env // {} | to_entries[] | "\(.key)=\(.value)"' "${dir}/message.json")
  report "$dir" "$step" InProgress
  # shellcheck disable=SC2016 # the inner sh expands $1 and $2
  timeout --kill-after=10 "$timeout" \
    env -i "PATH=${COMMAND_PATH}" HOME=/root "${environment[@]}" \
    sh -c 'cd "$1" && exec sh "$2"' step "${workdir:-${dir}/${step}}" "${dir}/${step}/_script.sh" \
    </dev/null >"${dir}/${step}/stdout" 2>"${dir}/${step}/stderr" || code=$?
  case $code in
    0) report "$dir" "$step" Success 0 ;;
    124 | 137) report "$dir" "$step" TimedOut -1 ;;
    *) report "$dir" "$step" Failed "$code" ;;
  esac
  [[ $code == 0 ]]
}

# run_command DIR: the document's steps in order; after a failure the rest are cancelled.
run_command() {
  local dir=$1 count index step failed=false
  count=$(jq '.steps | length' "${dir}/message.json")
  for ((index = 0; index < count; index++)); do
    if [[ $failed == true ]]; then
      step=$(jq -r ".steps[${index}].name" "${dir}/message.json")
      mkdir -p "${dir}/${step}"
      report "$dir" "$step" Cancelled
      continue
    fi
    run_step "$dir" "$index" || failed=true
  done
  touch "${dir}/done"
}

# A command this node was running when it stopped ends as the real agent ends
# it after a reboot: failed, saying why.
fail_interrupted() {
  local dir step
  for dir in "$WORK_DIR"/*/; do
    dir=${dir%/}
    [[ -f ${dir}/message.json && ! -f ${dir}/done ]] || continue
    while read -r step; do
      [[ -f ${dir}/${step}/reported ]] && continue
      mkdir -p "${dir}/${step}"
      echo "rig-ssm-agent: the instance stopped or restarted while this command ran" >>"${dir}/${step}/stderr"
      report "$dir" "$step" Failed 1
    done < <(jq -r '.steps[].name' "${dir}/message.json")
    log "command $(basename "$dir") was interrupted by a restart: reported Failed"
    touch "${dir}/done"
  done
}

mkdir -p "$WORK_DIR"
log "instance ${RIG_INSTANCE_ID} polling ${RIG_SSM_ENDPOINT}"
fail_interrupted
while true; do
  message=$(mktemp "${WORK_DIR}/.message.XXXXXX")
  code=$(curl -sS -o "$message" -w '%{http_code}' --max-time 30 \
    "${RIG_SSM_ENDPOINT}/rig-ssm-agent/next?instance=${RIG_INSTANCE_ID}" 2>/dev/null) || code=000
  if [[ $code == 200 ]]; then
    command_id=$(jq -r '.commandId' "$message")
    # The endpoint offers a command again until its first report arrives: take it
    # once (a command taken before a restart was reported by fail_interrupted).
    if [[ $command_id =~ ^[0-9a-f-]{36}$ && ! -f ${WORK_DIR}/${command_id}/message.json ]]; then
      mkdir -p "${WORK_DIR}/${command_id}"
      mv "$message" "${WORK_DIR}/${command_id}/message.json"
      log "running command ${command_id}"
      run_command "${WORK_DIR}/${command_id}" &
      continue
    fi
  fi
  rm -f "$message"
  # 204: nothing waiting (the endpoint held the poll); anything else: the link or endpoint is down.
  [[ $code == 204 ]] || sleep 2
done
