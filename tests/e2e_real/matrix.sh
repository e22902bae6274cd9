#!/usr/bin/env bash
# Run a command once per real server and proxy configuration.
#
#   E2E_REAL_RUNS="SERVER:FLAVOUR ..." tests/e2e_real/matrix.sh COMMAND [ARG...]
#
# SERVER is what run.sh starts (llama-cpp-python or llama-server). FLAVOUR is
# the proxy's BACKEND_FLAVOUR for that run, or "default" for none at all: the
# configuration a user gets who sets only the backend URL must work too.
# Every run happens even when an earlier one failed, so one command shows the
# whole picture; a summary comes last, and the exit code is 1 if any run
# failed.
set -euo pipefail

log() { printf 'e2e-real: %s\n' "$*" >&2; }

main() {
    [ $# -gt 0 ] || { log "usage: E2E_REAL_RUNS='SERVER:FLAVOUR ...' $0 COMMAND [ARG...]"; exit 2; }
    local runs run server flavour rc summary="" failed=0
    read -r -a runs <<<"${E2E_REAL_RUNS:?set E2E_REAL_RUNS to SERVER:FLAVOUR pairs}"
    local here
    here="$(dirname "$0")"
    for run in "${runs[@]}"; do
        server="${run%%:*}"
        flavour="${run#*:}"
        [ "$server" != "$run" ] || { log "'$run' is not SERVER:FLAVOUR"; exit 2; }
        log "=== $server, BACKEND_FLAVOUR=${flavour/#default/(unset)} ==="
        rc=0
        if [ "$flavour" = default ]; then
            # env -u: a BACKEND_FLAVOUR in the caller's environment must not
            # turn the default run into a flavoured one.
            env -u BACKEND_FLAVOUR E2E_REAL_SERVER="$server" "$here/run.sh" "$@" || rc=$?
        else
            env BACKEND_FLAVOUR="$flavour" E2E_REAL_SERVER="$server" "$here/run.sh" "$@" || rc=$?
        fi
        # 130/143: interrupted; don't carry on with the other runs.
        [ "$rc" -ne 130 ] && [ "$rc" -ne 143 ] || exit "$rc"
        [ "$rc" -eq 0 ] || failed=1
        summary+="$(printf '  %-17s %-9s %s' "$server" "$flavour" \
            "$([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)")")"$'\n'
    done
    log "summary (server, BACKEND_FLAVOUR, result):"
    printf '%s' "$summary" >&2
    exit "$failed"
}

main "$@"
