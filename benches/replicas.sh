#!/usr/bin/env bash
# Replicas bench: R `chanmon run` replicas sharing N monitors on one local PostgreSQL.
#
#   benches/replicas.sh [MONITORS] [REPLICAS] [SECONDS] [INTERVAL] [MODEL]
#   benches/replicas.sh 10000 3 180 60s delay-50-50      # the acceptance run
#
# Starts a throwaway PostgreSQL cluster (initdb + pg_ctl in target/replica-bench, as the
# `postgres` user when run as root; server defaults, so every commit is flushed), the mock
# upstream, and R replicas (release build) on one config, all at once. After SECONDS it stops
# them with SIGTERM and reads, from the database: slots recorded twice (duplicates), slots
# missed between each series' first and last recorded slot (misses), rows per second; from each
# replica's final counters: checks started, on-time share; from /proc: CPU seconds per replica.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}; R=${2:-3}; SECS=${3:-180}; INTERVAL=${4:-60s}; MODEL=${5:-delay-50-50}
OUT=$PWD/target/replica-bench
if [ -f "$OUT/pg/postmaster.pid" ]; then
  runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" -D "$OUT/pg" stop -m immediate >/dev/null 2>&1 || true
fi
rm -rf "$OUT"; mkdir -p "$OUT"
cargo build --release --bin chanmon --example mock_upstream >/dev/null 2>&1

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$OUT/pg" "$OUT/sock"
if [ "$(id -u)" = 0 ]; then chown postgres "$OUT" "$OUT/pg" "$OUT/sock"; fi
as_pg "$PGBIN/initdb" -D "$OUT/pg" -A trust -U postgres >/dev/null
PGPORT=$((40000 + RANDOM % 20000))
as_pg "$PGBIN/pg_ctl" -D "$OUT/pg" -l "$OUT/pg.log" -w \
  -o "-p $PGPORT -k $OUT/sock -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  as_pg "$PGBIN/pg_ctl" -D "$OUT/pg" stop -m immediate >/dev/null 2>&1 || true
}
trap cleanup EXIT
URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"

PORT=$((20000 + RANDOM % 20000))
target/release/examples/mock_upstream --port "$PORT" --key bench-key >"$OUT/mock.log" 2>&1 &
PIDS+=($!)
sleep 1
{
  printf 'database = "%s"\n' "$URL"
  printf '[network]\nallow_http = true\nallow_cidrs = ["127.0.0.0/8"]\n\n'
  printf '[runner]\nworkers = 64\nqueue = 1024\ntick = "1s"\nshutdown_grace = "10s"\n\n'
  printf '[defaults]\ninterval = "%s"\ntimeout = "5s"\ndegraded_after = "2s"\n' "$INTERVAL"
  for i in $(seq 1 "$N"); do
    printf '\n[[monitor]]\nid = "m%05d"\nprovider = "openai"\nendpoint = "http://127.0.0.1:%s"\napi_key = "bench-key"\nmodel = "%s"\n' "$i" "$PORT" "$MODEL"
  done
} >"$OUT/monitors.toml"
export CHANMON_MASTER_KEY=0202020202020202020202020202020202020202020202020202020202020202

DAEMONS=()
for r in $(seq 1 "$R"); do
  target/release/chanmon --config "$OUT/monitors.toml" run 2>"$OUT/replica-$r.log" &
  DAEMONS+=($!); PIDS+=($!)
done
HZ=$(getconf CLK_TCK)
sleep "$SECS"
CPUS=()
for d in "${DAEMONS[@]}"; do
  CPUS+=("$(awk -v hz="$HZ" '{print ($14 + $15) / hz}' /proc/$d/stat)")
done
for d in "${DAEMONS[@]}"; do kill -TERM "$d"; done
for d in "${DAEMONS[@]}"; do wait "$d" || true; done

python3 - "$OUT" "$R" "$SECS" "$INTERVAL" "$PGPORT" "${CPUS[@]}" <<'PY'
import re, subprocess, sys
out, r, secs, interval, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
cpus = [float(c) for c in sys.argv[6:]]
iv = int(interval[:-1]) * {"s": 1000, "m": 60000}[interval[-1]]
def sql(q):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-At", "-c", q],
                          check=True, capture_output=True, text=True).stdout.strip()
rows = int(sql("SELECT count(*) FROM history"))
dups = int(sql("SELECT coalesce(sum(c - 1), 0) FROM (SELECT series, due_at, count(*) c FROM history "
               "WHERE due_at IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d"))
misses = int(sql(f"SELECT coalesce(sum(gap), 0) FROM (SELECT (max(due_at) - min(due_at)) / {iv} + 1 "
                 "- count(DISTINCT due_at) AS gap FROM history WHERE due_at IS NOT NULL GROUP BY series) g"))
series = int(sql("SELECT count(DISTINCT series) FROM history"))
print(f"| monitors | {int(series)} series with results, {rows} rows in {secs} s ({rows / secs:.0f} rows/s) |")
print(f"| duplicates (a slot recorded twice) | {dups} |")
print(f"| misses (a slot skipped between a series' first and last) | {misses} |")
started = on = late = 0
for i in range(1, r + 1):
    log = open(f"{out}/replica-{i}.log").read()
    line = [l for l in log.splitlines() if "daemon stopped" in l]
    f = dict(re.findall(r"(\w+)=(\d+)", line[-1])) if line else {}
    s, o, l = int(f.get("checks_started", 0)), int(f.get("started_on_time", 0)), int(f.get("started_late", 0))
    started += s; on += o; late += l
    per = cpus[i - 1] / s * 1000 if s else float("nan")
    print(f"| replica {i} | {s} checks, {o / max(o + l, 1) * 100:.3f} % on time, CPU {cpus[i - 1]:.1f} s = {per:.3f} ms per check |")
print(f"| all replicas | {started} checks started, on time {on / max(on + late, 1) * 100:.3f} % |")
PY
