#!/usr/bin/env bash
# Side-by-side broker benchmark with warren-perf: the nine scenarios of
# shared/guide/benchmarking.md against broker A (and optionally B), alternating
# A B A B, medians compared.
#
#   scripts/bench.sh [options] URI_A [URI_B]
#
#   --pid-a PID        broker A's process id: CPU µs per message, RSS figures
#   --pid-b PID        the same for broker B
#   --rounds N         runs per scenario and broker (default 2)
#   --duration SECS    publishing time of the timed scenarios (default 10)
#   --only LIST        scenarios to run, comma-separated (e.g. 1,2,9; default all)
#   --backlog-messages N   scenario 7's backlog (default 1000000)
#   --idle-connections N   scenario 8's connections (default 1000)
#   --extra "ARGS"     extra warren-perf arguments for every run
#   --out DIR          keep each run's JSON summary and log there (default: a temp dir)
#   --no-build         use the warren-perf already built
#   --report-only      run nothing: print the table from the summaries in --out
#
# Example, warren on 5673 beside RabbitMQ on 5672:
#   scripts/bench.sh --pid-a "$(pgrep -f 'target/release/warren')" \
#     --pid-b "$(pgrep -f beam.smp)" \
#     amqp://guest:guest@127.0.0.1:5673/%2f amqp://guest:guest@127.0.0.1:5672/%2f
#
# Scenarios (each run is one warren-perf process; the summary is JSON):
#   1 1 producer -> 1 queue -> 1 consumer, 16 B, no confirms, auto-ack
#   2 the same with confirms (window 1000), manual multi-acks, prefetch 1000
#   3 persistent 16 B to a durable queue, confirms, manual acks
#   4 fanout to 10 queues, 10 consumers (rate = deliveries/s)
#   5 topic exchange with 1,000 bindings, 1,000 routing keys
#   6 1 KiB and 64 KiB bodies (MB/s)
#   7 backlog of 1M 16 B messages with no consumer: broker RSS per message, then
#     the drain rate
#   8 1,000 idle connections with one channel each: broker RSS per connection
#   9 latency at 10,000 msg/s with confirms: p50 and p99
# Scenario 8 runs first and 7 last: RSS is measured as growth, and memory a broker
# kept after a large backlog would hide the growth of later scenarios. For the same
# reason only the first round of 8 and 7 on a freshly started broker shows its full
# cost (later rounds reuse memory the allocator kept): for memory figures, restart
# the brokers and run `--only 8 --rounds 1`, then `--only 7 --rounds 1`.
# RSS figures need --pid-a/--pid-b. Ratios are A/B: above 1 means A is higher (better
# for rates, worse for memory and latency). "us/msg" is the broker's CPU time per
# message delivered; "cpu% b/t" the broker's and the tool's CPU as % of one core.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

PID_A="" PID_B="" ROUNDS=2 DURATION=10 ONLY="" BACKLOG=1000000 IDLE=1000
EXTRA="" OUT="" BUILD=1 RUN=1
URIS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pid-a) PID_A="$2"; shift 2 ;;
    --pid-b) PID_B="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --backlog-messages) BACKLOG="$2"; shift 2 ;;
    --idle-connections) IDLE="$2"; shift 2 ;;
    --extra) EXTRA="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --report-only) RUN=0; BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "bench.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) URIS+=("$1"); shift ;;
  esac
done
if [[ ${#URIS[@]} -lt 1 || ${#URIS[@]} -gt 2 ]]; then
  echo "bench.sh: give one or two broker URIs" >&2; usage >&2; exit 2
fi
URI_A="${URIS[0]}"
URI_B="${URIS[1]:-}"
TARGETS=(A)
[[ -n "$URI_B" ]] && TARGETS+=(B)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PERF="$TARGET_DIR/release/warren-perf"
if [[ $BUILD -eq 1 ]]; then
  echo "building warren-perf (release)..." >&2
  (cd "$ROOT" && cargo build --release -p warren-perf >&2)
fi
[[ $RUN -eq 0 || -x "$PERF" ]] || { echo "bench.sh: $PERF not found (build it or drop --no-build)" >&2; exit 1; }
if [[ $RUN -eq 0 && -z "$OUT" ]]; then
  echo "bench.sh: --report-only needs --out DIR" >&2; exit 2
fi
OUT="${OUT:-$(mktemp -d -t warren-bench.XXXXXX)}"
mkdir -p "$OUT"
# Scenario 8 holds a thousand sockets open in the tool.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# jget FILE PATH: a number from a JSON summary (jq path syntax, e.g. .latency_ms.p99),
# or "null".
if command -v jq >/dev/null 2>&1; then
  jget() { [[ -s "$1" ]] && jq -r "$2 // \"null\"" "$1" 2>/dev/null || echo null; }
else
  jget() {
    [[ -s "$1" ]] || { echo null; return; }
    python3 - "$1" "$2" <<'PY' 2>/dev/null || echo null
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].lstrip(".").split("."):
    value = value.get(key) if isinstance(value, dict) else None
print("null" if value is None else value)
PY
  }
fi

# median of the numbers on stdin ("null" lines ignored); "null" when none.
median() {
  { grep -v '^null$' || true; } | sort -g | awk '{v[NR]=$1} END {
    if (NR == 0) { print "null"; exit }
    if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}

# The warren-perf arguments of each scenario.
scenario_args() {
  local timed="--duration $DURATION"
  case "$1" in
    1) echo "$timed --size 16 --auto-ack" ;;
    2) echo "$timed --size 16 --confirm 1000 --prefetch 1000" ;;
    3) echo "$timed --size 16 --persistent --confirm 1000 --prefetch 1000" ;;
    4) echo "$timed --size 16 --exchange-type fanout --queues 10 --consumers 10 --confirm 1000 --prefetch 1000" ;;
    5) echo "$timed --size 16 --exchange-type topic --routing-keys 1000 --topic-bindings 1000 --confirm 1000 --prefetch 1000" ;;
    6a) echo "$timed --size 1024 --confirm 1000 --prefetch 1000" ;;
    6b) echo "$timed --size 65536 --confirm 200 --prefetch 200" ;;
    7) echo "--backlog --messages $BACKLOG --size 16 --confirm 1000 --prefetch 1000" ;;
    8) echo "--producers 0 --consumers 0 --connections-idle $IDLE" ;;
    9) echo "$timed --size 16 --rate 10000 --confirm 1000 --prefetch 1000" ;;
  esac
}

# The table's rows: row id | scenario run | JSON path | label.
ROWS=(
  "1|1|.consume_rate|1 fast path 16 B, auto-ack (msg/s)"
  "2|2|.consume_rate|2 confirms + acks (msg/s)"
  "3|3|.consume_rate|3 persistent, confirms (msg/s)"
  "4|4|.consume_rate|4 fanout x10 (deliveries/s)"
  "5|5|.consume_rate|5 topic, 1000 bindings (msg/s)"
  "6a|6a|.consume_mb_s|6 1 KiB bodies (MB/s)"
  "6b|6b|.consume_mb_s|6 64 KiB bodies (MB/s)"
  "7a|7|.backlog.rss_bytes_per_msg|7 backlog RSS (B/msg)"
  "7b|7|.backlog.drain_rate|7 backlog drain (msg/s)"
  "8|8|.idle_connections.rss_bytes_per_connection|8 idle conns RSS (B/conn)"
  "9a|9|.latency_ms.p50|9 p50 at 10k msg/s (ms)"
  "9b|9|.latency_ms.p99|9 p99 at 10k msg/s (ms)"
)
ORDER=(8 1 2 3 4 5 6a 6b 9 7)

selected() {  # is scenario $1 (6a -> 6) in --only?
  [[ -z "$ONLY" ]] && return 0
  local id="${1%[ab]}"
  [[ ",$ONLY," == *",$id,"* ]]
}

uri_of() { [[ "$1" == A ]] && echo "$URI_A" || echo "$URI_B"; }
pid_of() { [[ "$1" == A ]] && echo "$PID_A" || echo "$PID_B"; }

for scenario in "${ORDER[@]}"; do
  [[ $RUN -eq 1 ]] && selected "$scenario" || continue
  for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do
      json="$OUT/s$scenario-$target-r$round.json"
      log="$OUT/s$scenario-$target-r$round.log"
      pid="$(pid_of "$target")"
      # shellcheck disable=SC2046 # the scenario's arguments are words
      cmd=("$PERF" --uri "$(uri_of "$target")" $(scenario_args "$scenario") \
           ${pid:+--broker-pid "$pid"} --json "$json" $EXTRA)
      echo "scenario $scenario, broker $target, round $round: ${cmd[*]:1}" >&2
      echo "${cmd[*]}" > "$log"
      if ! "${cmd[@]}" 2>>"$log"; then
        echo "  failed (see $log)" >&2
        rm -f "$json"
      else
        tail -n 12 "$log" | grep -E '^  (published|consumed|latency|broker|backlog|idle)' >&2 || true
      fi
    done
  done
done

# figure SCENARIO TARGET PATH: the median over the rounds.
figure() {
  for round in $(seq 1 "$ROUNDS"); do
    jget "$OUT/s$1-$2-r$round.json" "$3"
  done | median
}
fmt() { [[ "$1" == null ]] && echo "-" || awk -v v="$1" 'BEGIN {
  if (v >= 1000) printf "%.0f", v; else if (v >= 10) printf "%.1f", v; else printf "%.3f", v }'; }
# load SCENARIO TARGET: "broker/tool" CPU as % of one core (the tool near 100% per
# worker thread means the tool, not the broker, was the limit).
load() {
  local broker tool
  broker="$(figure "$1" "$2" .broker.cpu_percent)"
  tool="$(figure "$1" "$2" .tool.cpu_percent)"
  awk -v b="$broker" -v t="$tool" 'BEGIN {
    printf "%s/%s", (b == "null" ? "-" : sprintf("%.0f", b)), (t == "null" ? "-" : sprintf("%.0f", t)) }'
}
ratio() { if [[ "$1" == null || "$2" == null ]]; then echo "-"; else
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; fi; }

{
  printf '%-40s %10s %10s %6s %12s %12s %13s %13s\n' scenario "A" "B" "A/B" \
    "A us/msg" "B us/msg" "A cpu% b/t" "B cpu% b/t"
  for row in "${ROWS[@]}"; do
    IFS='|' read -r _id scenario path label <<<"$row"
    selected "$scenario" || continue
    a="$(figure "$scenario" A "$path")"
    a_cpu="$(figure "$scenario" A .broker.cpu_us_per_msg)"
    a_load="$(load "$scenario" A)"
    b=null b_cpu=null b_load="-"
    if [[ -n "$URI_B" ]]; then
      b="$(figure "$scenario" B "$path")"
      b_cpu="$(figure "$scenario" B .broker.cpu_us_per_msg)"
      b_load="$(load "$scenario" B)"
    fi
    printf '%-40s %10s %10s %6s %12s %12s %13s %13s\n' "$label" "$(fmt "$a")" "$(fmt "$b")" \
      "$(ratio "$a" "$b")" "$(fmt "$a_cpu")" "$(fmt "$b_cpu")" "$a_load" "$b_load"
  done
  echo
  echo "A = $URI_A${PID_A:+ (pid $PID_A)}"
  [[ -n "$URI_B" ]] && echo "B = $URI_B${PID_B:+ (pid $PID_B)}"
  echo "medians of $ROUNDS round(s); $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); summaries in $OUT"
} | tee "$OUT/table.txt"
