#!/usr/bin/env bash
# Do probes keep their schedule while an alert receiver hangs?
#
#   benches/alert_hang.sh [MONITORS] [SECONDS]
#   benches/alert_hang.sh 200 60
#
# Runs `chanmon run` (release) twice against the loopback mock upstream, every monitor failing
# (`status-500`, so each opens an incident and owes an alert at its first check) with
# interval 10s: once with no sink, once with a webhook sink whose receiver accepts connections
# and never answers (every send waits out the sink's 10 s timeout, then retries). Prints, for
# each run, the probes started within one tick of their due time, the dropped jobs and the
# alert drainer's counters. Logs go to target/alert-hang/.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}; SECS=${2:-60}
OUT=target/alert-hang; rm -rf "$OUT"; mkdir -p "$OUT"
cargo build --release --bin chanmon --example mock_upstream >/dev/null 2>&1
PORT=$((20000 + RANDOM % 20000)); HANG=$((PORT + 1))
target/release/examples/mock_upstream --port "$PORT" --key bench-key >"$OUT/mock.log" 2>&1 &
MOCK=$!
# Accepts every connection, reads nothing, answers nothing.
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096); held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$HANG" &
RECV=$!
trap 'kill $MOCK $RECV 2>/dev/null || true' EXIT
sleep 1
export CHANMON_MASTER_KEY=0303030303030303030303030303030303030303030303030303030303030303
run() { # $1 = name, $2 = extra config
  local dir="$OUT/$1"; mkdir -p "$dir"
  {
    printf '[network]\nallow_http = true\nallow_cidrs = ["127.0.0.0/8"]\n\n'
    printf '[runner]\nworkers = 16\nqueue = 1024\ntick = "1s"\nshutdown_grace = "5s"\n\n'
    printf '[defaults]\ninterval = "10s"\ntimeout = "5s"\n'
    printf '%s\n' "$2"
    for i in $(seq 1 "$N"); do
      printf '\n[[monitor]]\nid = "m%05d"\nprovider = "openai"\nendpoint = "http://127.0.0.1:%s"\napi_key = "bench-key"\nmodel = "status-500"\n' "$i" "$PORT"
    done
  } >"$dir/monitors.toml"
  target/release/chanmon --config "$dir/monitors.toml" run 2>"$dir/daemon.log" &
  local d=$!
  sleep "$SECS"
  kill -TERM $d; wait $d || true
  python3 - "$dir/daemon.log" "$1" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
stop = [l for l in log.splitlines() if "daemon stopped" in l][-1]
m = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", stop))
on, late = m["started_on_time"], m["started_late"]
drain = [l for l in log.splitlines() if "alert drainer stopped" in l]
d = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", drain[-1])) if drain else {}
print(f"{sys.argv[2]}: checks started {m['checks_started']}, on time {on}/{on + late} "
      f"({100 * on / max(1, on + late):.2f} %), dropped {m['dropped']}, "
      f"alerts delivered {d.get('alerts_delivered', '-')} retried {d.get('alerts_retried', '-')} dead {d.get('alerts_dead', '-')}")
PY
}
run no-sink ""
run hanging-receiver "$(printf '\n[[alert]]\nid = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:%s/hook"\ntimeout = "10s"\n[alert.network]\nallow_http = true\nallow_cidrs = ["127.0.0.0/8"]\n\n[alerts]\nsinks = ["hook"]\nfailure_threshold = 1\ngroup_window = "0s"\nretry_base = "1s"\n' "$HANG")"
