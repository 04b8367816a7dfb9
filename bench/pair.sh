#!/usr/bin/env bash
# A/B of two Lanekeeper builds on a busy machine: both run at once, pinned to the same core,
# against one mock upstream, each loaded by its own wrk (32 connections), and CPU time per
# request is read for both from /proc. Background load hits both alike, so the ratio of the
# two figures is what to read (absolute figures rise with the contention).
#
#   bench/pair.sh A_CLI B_CLI json|stream [seconds]
#
# A_CLI / B_CLI: a compiled cli.js (see buildLanekeeper in bench/targets.ts), or a checkout
# directory whose proxy/src/cli.ts is run through tsx. Needs wrk, taskset and 2+ cores.
set -euo pipefail
A=$1 B=$2 MODE=$3 SECS=${4:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TMP=$(mktemp -d)
pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

taskset -c 1 node --import tsx bench/mock-upstream.ts --port 0 > "$TMP/upstream" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$TMP/upstream" && break; sleep 0.1; done
UPSTREAM="http://127.0.0.1:$(awk '/listening/{print $2}' "$TMP/upstream")"

config() { # port -> config file
  node --import tsx -e "import('$ROOT/bench/lanekeeper-config.ts').then((m) => process.stdout.write(JSON.stringify(m.benchConfig({ listenPort: $1, adminPort: $(($1 + 1)), upstreamUrl: '$UPSTREAM' }))))" > "$TMP/config-$1.json"
  echo "$TMP/config-$1.json"
}
start() { # cli port -> pid
  local entry=("$1")
  [ -f "$1" ] || entry=(--import tsx "$1/proxy/src/cli.ts")
  taskset -c 1 node "${entry[@]}" proxy --config "$(config "$2")" > /dev/null 2> "$TMP/err-$2" &
  echo $!
}
PA=$((20000 + RANDOM % 10000)); PB=$((PA + 2))
LA=$(start "$A" $PA); LB=$(start "$B" $PB); pids+=("$LA" "$LB")
for p in $PA $PB; do
  for _ in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$((p + 1))/healthz" && break; sleep 0.1; done
done

export LK_BENCH_BODY LK_BENCH_KEY
LK_BENCH_BODY=$(node --import tsx -e "import('$ROOT/bench/lanekeeper-config.ts').then((m) => process.stdout.write(m.chatBody('$MODE' === 'stream')))")
LK_BENCH_KEY=$(node --import tsx -e "import('$ROOT/bench/lanekeeper-config.ts').then((m) => process.stdout.write(m.BENCH_API_KEY))")
load() { taskset -c 0 wrk -t1 -c32 -d"$2" -s bench/wrk/chat.lua "http://127.0.0.1:$1"; }
# Warm-up, then the timed runs side by side.
load $PA 2s > /dev/null & warm=$!; load $PB 2s > /dev/null; wait $warm
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TA0=$(ticks "$LA"); TB0=$(ticks "$LB")
load $PA "${SECS}s" > "$TMP/wrk-a" & timed=$!; load $PB "${SECS}s" > "$TMP/wrk-b"; wait $timed
TA1=$(ticks "$LA"); TB1=$(ticks "$LB")
requests() { grep LKBENCH "$1" | sed 's/LKBENCH //' | node -e "let s = ''; process.stdin.on('data', (d) => (s += d)).on('end', () => console.log(JSON.parse(s).requests))"; }
RA=$(requests "$TMP/wrk-a"); RB=$(requests "$TMP/wrk-b")
HZ=$(getconf CLK_TCK)
us() { echo "scale=1; ($2 - $1) * 1000000 / $HZ / $3" | bc; }
echo "$MODE  A $(us "$TA0" "$TA1" "$RA") us/req ($RA requests)  B $(us "$TB0" "$TB1" "$RB") us/req ($RB requests)"
