#!/usr/bin/env bash
# TLS settings at fleet scale: times `chanmon validate` on generated configs where every
# monitor names the same `ca_file` in its own [monitor.network] table, against the same fleet
# without it. The PEM bundle (the system's, ~140 roots) is read and checked once per load
# however many monitors name it, so the two should cost about the same.
#
#   benches/validate_tls.sh [SIZES...]        # default: 10000 100000
#
# Uses the release binary (built here); best of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/validate-tls-bench; mkdir -p "$OUT"
cargo build --release --bin chanmon >/dev/null 2>&1
cp /etc/ssl/certs/ca-certificates.crt "$OUT/bundle.pem"
best_of_3() {
  local best=""
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    target/release/chanmon --config "$1" validate >/dev/null
    t1=$(date +%s.%N)
    best=$(python3 -c "b='$best'; t=$t1-$t0; print(min(float(b), t) if b else t)")
  done
  echo "$best"
}
for n in ${@:-10000 100000}; do
  for variant in plain ca_file; do
    f="$OUT/monitors-$n-$variant.toml"
    {
      printf '[defaults]\ninterval = "60s"\ntimeout = "5s"\n'
      for i in $(seq 1 "$n"); do
        printf '\n[[monitor]]\nid = "m%06d"\nprovider = "openrouter"\napi_key = "bench-key"\nmodel = "openai/gpt-4o-mini"\n' "$i"
        if [ "$variant" = ca_file ]; then
          printf '[monitor.network]\nca_file = "bundle.pem"\n'
        fi
      done
    } >"$f"
    t=$(best_of_3 "$f")
    python3 -c "print(f'{$n:>7} monitors, {\"$variant\":>8}: validate {$t:.3f} s (best of 3), {$t * 1e6 / $n:.1f} µs per monitor')"
  done
done
