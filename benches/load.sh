#!/usr/bin/env bash
# Load bench for `chanmon run`: many monitors against the loopback mock upstream.
#
#   benches/load.sh [MONITORS] [INTERVAL] [WORKERS] [SECONDS] [MODEL] [QUEUE] [RELOAD_AT]
#   benches/load.sh 10000 60s 64 200 delay-50-50      # the nominal run
#   benches/load.sh 1000 10s 2 120 delay-50-50 64     # the overload run
#   benches/load.sh 100000 60s 256 300 delay-50-50 8192 150   # scale, SIGHUP at 150 s
#
# Builds release binaries, starts the mock, writes a config, times `chanmon validate` on it,
# runs the daemon for SECONDS (sending SIGHUP at RELOAD_AT seconds when given), samples its RSS
# and CPU once a second, stops it with SIGTERM and prints the counters of its final summary
# line, the start-up time (process start to the first queued check, from the log) and how
# long the reload took. Every WINDOW seconds (default 30) it sends SIGUSR1, which makes the
# daemon log its counters, and prints the on-time share and RSS of each window, so the window
# holding a reload can be compared with the others. Samples go to target/load-bench/samples.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}; INTERVAL=${2:-60s}; WORKERS=${3:-64}; SECS=${4:-200}; MODEL=${5:-delay-50-50}; QUEUE=${6:-1024}; RELOAD_AT=${7:-0}
WINDOW=${WINDOW:-30}
OUT=target/load-bench; rm -rf "$OUT"; mkdir -p "$OUT"
cargo build --release --bin chanmon --example mock_upstream >/dev/null 2>&1
PORT=$((20000 + RANDOM % 20000))
target/release/examples/mock_upstream --port "$PORT" --key bench-key >"$OUT/mock.log" 2>&1 &
MOCK=$!
trap 'kill $MOCK 2>/dev/null || true' EXIT
sleep 1
{
  printf '[network]\nallow_http = true\nallow_cidrs = ["127.0.0.0/8"]\n\n'
  printf '[runner]\nworkers = %s\nqueue = %s\ntick = "1s"\nshutdown_grace = "10s"\n\n' "$WORKERS" "$QUEUE"
  printf '[defaults]\ninterval = "%s"\ntimeout = "5s"\ndegraded_after = "2s"\n' "$INTERVAL"
  for i in $(seq 1 "$N"); do
    printf '\n[[monitor]]\nid = "m%05d"\nprovider = "openai"\nendpoint = "http://127.0.0.1:%s"\napi_key = "bench-key"\nmodel = "%s"\n' "$i" "$PORT" "$MODEL"
  done
} >"$OUT/monitors.toml"
export CHANMON_MASTER_KEY=0202020202020202020202020202020202020202020202020202020202020202
V0=$(date +%s.%N)
target/release/chanmon --config "$OUT/monitors.toml" validate >/dev/null
V1=$(date +%s.%N)
echo "validate: $(python3 -c "print(f'{$V1 - $V0:.2f}')") s for $N monitors ($(du -h "$OUT/monitors.toml" | cut -f1))"
T0=$(date -u +%s.%N)
target/release/chanmon --config "$OUT/monitors.toml" run 2>"$OUT/daemon.log" &
D=$!
HZ=$(getconf CLK_TCK)
echo "t_s,rss_kib,cpu_s" >"$OUT/samples.csv"
for t in $(seq 1 "$SECS"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' /proc/$D/status)
  cpu=$(awk -v hz="$HZ" '{print ($14 + $15) / hz}' /proc/$D/stat)
  echo "$t,$rss,$cpu" >>"$OUT/samples.csv"
  if [ $((t % WINDOW)) = 0 ]; then kill -USR1 $D; fi
  if [ "$t" = "$RELOAD_AT" ]; then kill -HUP $D; fi
done
CPU=$(awk -v hz="$HZ" '{print ($14 + $15) / hz}' /proc/$D/stat)
kill -TERM $D; wait $D
python3 - "$OUT" "$SECS" "$CPU" "$T0" "$WINDOW" "$RELOAD_AT" <<'PY'
import csv, re, sys
from datetime import datetime
out, secs, cpu, t0 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
window, reload_at = int(sys.argv[5]), int(sys.argv[6])
log = open(f"{out}/daemon.log").read()
def at(needle):
    for l in log.splitlines():
        if needle in l:
            ts = re.match(r"\S+", re.sub(r"\x1b\[[0-9;]*m", "", l)).group(0)
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return None
for needle, what in (("daemon started", "daemon started"), ("first check queued", "first check queued")):
    t = at(needle)
    print(f"{what}: {t - t0:.2f} s after process start" if t else f"{what}: not in the log")
r0, r1 = at("SIGHUP: reloading"), at("config reloaded")
if r0 and r1:
    print(f"reload: {r1 - r0:.2f} s from SIGHUP to the new targets")
line = [l for l in log.splitlines() if "daemon stopped" in l][-1]
m = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", line))
rows = list(csv.DictReader(open(f"{out}/samples.csv")))
rss = [int(r["rss_kib"]) for r in rows]
started = m["checks_started"]
on_time = m["started_on_time"] / max(1, m["started_on_time"] + m["started_late"])
fin = sum(m[k] for k in ("finished_operational", "finished_degraded", "finished_failed", "finished_error"))
q = len(rss) // 4 or 1
print(f"checks started: {started} in {secs} s = {started / secs:.1f} checks/s")
print(f"finished: {fin} (operational {m['finished_operational']}, degraded {m['finished_degraded']}, failed {m['finished_failed']}, error {m['finished_error']})")
print(f"started within one tick of due: {on_time * 100:.3f} %")
print(f"dropped: {m['dropped']}")
print(f"CPU: {cpu:.1f} s total, {cpu * 1000 / max(1, started):.3f} ms per check")
print(f"RSS: peak {max(rss) / 1024:.1f} MiB; mean by quarter {[round(sum(rss[i:i+q]) / len(rss[i:i+q]) / 1024, 1) for i in range(0, len(rss), q)]} MiB")
# Per window, from the counters lines SIGUSR1 asked for (the last one is the final summary).
marks = [dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", l))
         for l in log.splitlines() if "daemon counters" in l or "daemon stopped" in l]
prev = dict(started_on_time=0, started_late=0, checks_started=0, dropped=0)
print("window (s)   started  on time    late  on-time %  dropped  RSS at end (MiB)")
for i, mk in enumerate(marks):
    lo, hi = i * window, min((i + 1) * window, secs)
    if lo >= secs:
        break
    ok = mk["started_on_time"] - prev["started_on_time"]; late = mk["started_late"] - prev["started_late"]
    tag = "  <- SIGHUP" if reload_at and lo <= reload_at < hi else ""
    r = rss[min(hi, len(rss)) - 1] / 1024 if rss else 0
    print(f"{lo:4}-{hi:<6} {mk['checks_started'] - prev['checks_started']:8} {ok:8} {late:7} {100 * ok / max(1, ok + late):9.3f}  {mk['dropped'] - prev['dropped']:7}  {r:8.1f}{tag}")
    prev = mk
PY
