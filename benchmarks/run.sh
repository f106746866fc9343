#!/usr/bin/env bash
# Run every benchmark of the gateway, one after the other, then print the summary table.
#
#   benchmarks/run.sh              # the full run (about 6 minutes on a 2-core machine)
#   benchmarks/run.sh --quick      # fewer rounds: a smoke run of everything (about 2 minutes)
#   benchmarks/run.sh --profile    # the full run, plus cProfile reports of the gateway's workers
#
# Figures go to $BENCH_OUT (default: a new temporary directory) as JSON, one file per benchmark,
# and the logs of each benchmark beside them. Needs the project's virtualenv (.venv) and
# redis-server (scripts/ensure-redis.sh installs it). Nothing but 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
OUT=${BENCH_OUT:-$(mktemp -d -t gateway-bench-XXXXXX)}
mkdir -p "$OUT"
QUICK=0
PROFILE=()
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --profile) PROFILE=(--profile) ;;
        *) echo "usage: benchmarks/run.sh [--quick] [--profile]" >&2; exit 2 ;;
    esac
done
if ! command -v redis-server >/dev/null 2>&1; then
    scripts/ensure-redis.sh
fi

if [ "$QUICK" = 1 ]; then
    TRANSLATE=(--rounds 500 --warmup 100)
    VOICE=(--rounds 2 --requests 600 --seconds 3 --warmup 150)
    VOICE_CPU=(--rounds 2 --requests 500)
    CONFERENCE=(--rounds 1)
    ISOLATION=(--quick)
else
    TRANSLATE=(--rounds 2000 --warmup 200)
    VOICE=(--rounds 5 --requests 1500 --seconds 5 --warmup 300)
    VOICE_CPU=(--rounds 5 --requests 2000)
    CONFERENCE=(--rounds 3)
    ISOLATION=()
fi

step() {  # step NAME COMMAND...: run it, keep its output, note the load around it
    local name=$1; shift
    echo "== $name: $*" >&2
    local began=$SECONDS
    cut -d' ' -f1-3 /proc/loadavg > "$OUT/$name.load-before"
    "$@" 2>&1 | tee "$OUT/$name.log" >&2
    cut -d' ' -f1-3 /proc/loadavg > "$OUT/$name.load-after"
    echo $(( SECONDS - began )) > "$OUT/$name.seconds"
}

started=$(date +%s)
step translate "$PY" -m benchmarks.bench_translate "${TRANSLATE[@]}" --json "$OUT/translate.json"
step voice "$PY" -m benchmarks.bench_voice "${VOICE[@]}" "${PROFILE[@]}" \
    --json "$OUT/voice.json"
step voice-keepalive "$PY" -m benchmarks.bench_voice --app keepalive "${VOICE[@]}" \
    --json "$OUT/voice-keepalive.json"
step voice-cpu "$PY" -m benchmarks.bench_voice_cpu "${VOICE_CPU[@]}" --json "$OUT/voice-cpu.json"
step conference "$PY" -m benchmarks.bench_conference_events "${CONFERENCE[@]}" \
    "${PROFILE[@]}" --json "$OUT/conference.json"
step isolation "$PY" -m benchmarks.bench_isolation "${ISOLATION[@]}" --json "$OUT/isolation.json"
"$PY" -m benchmarks.summary "$OUT" --seconds $(( $(date +%s) - started ))
echo "figures and logs: $OUT" >&2
