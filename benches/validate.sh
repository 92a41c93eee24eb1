#!/usr/bin/env bash
# Config-loading bench: times `chanmon validate` on generated configs of each size given.
#
#   benches/validate.sh [SIZES...]        # default: 10000 25000 50000 100000
#
# The configs are the load bench's (one OpenAI monitor per table, [defaults] for the timing
# keys). Linear loading shows as a time per monitor that stays flat as the size grows. Uses the
# release binary (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/validate-bench; mkdir -p "$OUT"
cargo build --release --bin chanmon >/dev/null 2>&1
for N in "${@:-10000 25000 50000 100000}"; do
  for n in $N; do
    f="$OUT/monitors-$n.toml"
    {
      printf '[network]\nallow_http = true\nallow_cidrs = ["127.0.0.0/8"]\n\n'
      printf '[defaults]\ninterval = "60s"\ntimeout = "5s"\ndegraded_after = "2s"\n'
      for i in $(seq 1 "$n"); do
        printf '\n[[monitor]]\nid = "m%06d"\nprovider = "openai"\nendpoint = "http://127.0.0.1:9"\napi_key = "bench-key"\nmodel = "gpt-4o-mini"\n' "$i"
      done
    } >"$f"
    best=""
    for _ in 1 2 3; do
      t0=$(date +%s.%N)
      target/release/chanmon --config "$f" validate >/dev/null
      t1=$(date +%s.%N)
      best=$(python3 -c "b='$best'; t=$t1-$t0; print(min(float(b), t) if b else t)")
    done
    python3 -c "print(f'{$n:>7} monitors: validate {$best:.3f} s (best of 3), {$best * 1e6 / $n:.1f} µs per monitor')"
  done
done
