#!/usr/bin/env bash
# Spike (issue 25): 4 commonware simplex validators as 4 processes on
# loopback. Measures commit latency, then kills one (the rest must go on),
# a second (they must halt), brings both back (they must resume, with every
# view finalized to one payload on every validator), and wipes one (it must
# rejoin). Prints a JSON summary; each validator's lines stay in $OUT.
#   spikes/bft-commonware/run.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vouch-spikes}"
cargo build -q --release
bin="$CARGO_TARGET_DIR/release/bft-commonware"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
base=$((20000 + RANDOM % 20000))
pids=()
start() {  # start I: validator I, appending to its log
  local i=$1 boot=()
  [[ $i != 0 ]] && boot=(--bootstrap "0@127.0.0.1:$base")
  "$bin" --me "$i" --port $((base + i)) --validators 4 --storage "$out/v$i" "${boot[@]}" \
    >>"$out/v$i.jsonl" 2>>"$out/v$i.log" &
  pids[$i]=$!
}
count() { cat "$out"/v*.jsonl 2>/dev/null | wc -l; }
trap 'kill ${pids[@]} 2>/dev/null || true' EXIT
for i in 0 1 2 3; do start $i; done
sleep 20
all4=$(count)
kill "${pids[3]}"; wait "${pids[3]}" 2>/dev/null || true
before=$(wc -l <"$out/v0.jsonl"); sleep 10; three=$(( $(wc -l <"$out/v0.jsonl") - before ))
kill "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
sleep 2
before=$(wc -l <"$out/v0.jsonl"); sleep 10; two=$(( $(wc -l <"$out/v0.jsonl") - before ))
start 2; start 3
before=$(wc -l <"$out/v0.jsonl"); sleep 15; resumed=$(( $(wc -l <"$out/v0.jsonl") - before ))
kill "${pids[3]}"; wait "${pids[3]}" 2>/dev/null || true
rm -rf "$out/v3"; : >"$out/v3.jsonl"
start 3
sleep 15
wiped=$(wc -l <"$out/v3.jsonl")
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
python3 - "$out" "$all4" "$three" "$two" "$resumed" "$wiped" <<'PY'
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
by_view, lat = {}, []
for f in sorted(out.glob("v*.jsonl")):
    for line in f.read_text().splitlines():
        d = json.loads(line)
        by_view.setdefault(d["view"], set()).add(d["payload"])
        if d["latency_ms"] is not None:
            lat.append(d["latency_ms"])
lat.sort()
forks = [v for v, p in by_view.items() if len(p) > 1]
print(json.dumps({
    "commit_latency_ms": {"p50": statistics.median(lat), "p99": lat[int(0.99 * (len(lat) - 1))],
                          "samples": len(lat)},
    "finalizations_4_up_20s_all_validators": int(sys.argv[2]),
    "finalized_on_v0_10s_with_3": int(sys.argv[3]),
    "finalized_on_v0_10s_with_2": int(sys.argv[4]),
    "finalized_on_v0_15s_after_both_back": int(sys.argv[5]),
    "finalized_on_wiped_v3_15s": int(sys.argv[6]),
    "views": len(by_view), "views_with_two_payloads": forks,
}, indent=1))
PY
