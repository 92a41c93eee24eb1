#!/usr/bin/env bash
# The fleet-size table of BENCHMARKS.md: `benches/load.sh` at several fleet sizes, one row each.
#
#   benches/scale.sh [SECONDS] [SIZES...]
#   benches/scale.sh 130 10000 25000 50000 100000
#
# Each row is a fresh daemon (60 s interval, 256 workers, queue 8192, the delay-50-50 model)
# run for SECONDS: validate time, start-up (process start to the first queued check), RSS at
# the end and its peak, daemon CPU per check, on-time share and drops. Full outputs go to
# target/scale-bench/N.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-130}; shift || true
SIZES=("${@:-10000 25000 50000 100000}")
# shellcheck disable=SC2206
SIZES=(${SIZES[*]})
OUT=target/scale-bench; mkdir -p "$OUT"
printf '| monitors | validate | start-up | RSS at end (peak) | per monitor | CPU per check | on time | dropped |\n|---|---|---|---|---|---|---|---|\n'
for n in "${SIZES[@]}"; do
  benches/load.sh "$n" 60s 256 "$SECS" delay-50-50 8192 >"$OUT/$n.txt" 2>&1
  end_kib=$(tail -1 target/load-bench/samples.csv | cut -d, -f2)
  python3 - "$n" "$OUT/$n.txt" "$end_kib" <<'PY'
import re, sys
n, text, end_kib = int(sys.argv[1]), open(sys.argv[2]).read(), int(sys.argv[3])
g = lambda p: (re.search(p, text) or [None, "?"])[1]
print(f"| {n:,} | {g(r'validate: ([0-9.]+) s')} s | {g(r'first check queued: ([0-9.]+) s')} s "
      f"| {end_kib / 1024:.0f} MiB ({g(r'RSS: peak ([0-9.]+) MiB')}) | {end_kib * 1024 / n / 1024:.2f} KiB "
      f"| {g(r'([0-9.]+) ms per check')} ms | {g(r'one tick of due: ([0-9.]+) %')} % | {g(r'dropped: ([0-9]+)')} |")
PY
done
