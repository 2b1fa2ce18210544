#!/usr/bin/env bash
# Measures how fast the owlmetry CLI starts: wall time and peak RSS of `owlmetry version`
# (which reads no config and opens no connection), over N runs. Prints the median and the
# worst run. Usage: bench/cli-startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
bin=$(mktemp -d)/owlmetry
trap 'rm -rf "$(dirname "$bin")"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin" ./cmd/owlmetry

out=$(mktemp)
for _ in $(seq "$runs"); do
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%e %M' -o "$out.one" "$bin" version >/dev/null
    # %e has 10 ms resolution; measure the wall time ourselves too.
  fi
  start=$(date +%s%N)
  "$bin" version >/dev/null
  end=$(date +%s%N)
  rss=0
  [ -f "$out.one" ] && rss=$(awk '{print $2}' "$out.one")
  echo "$(( (end - start) / 1000 )) $rss" >>"$out"
done
wall=$(awk '{print $1}' "$out" | sort -n)
rss=$(awk '{print $2}' "$out" | sort -n)
pick() { sed -n "$2p" <<<"$1"; }
mid=$(( (runs + 1) / 2 ))
printf 'owlmetry version, %d runs\n' "$runs"
printf '  wall time  median %s ms  max %s ms\n' \
  "$(awk -v v="$(pick "$wall" "$mid")" 'BEGIN{printf "%.1f", v/1000}')" \
  "$(awk -v v="$(pick "$wall" "$runs")" 'BEGIN{printf "%.1f", v/1000}')"
printf '  peak RSS   median %s MiB  max %s MiB\n' \
  "$(awk -v v="$(pick "$rss" "$mid")" 'BEGIN{printf "%.1f", v/1024}')" \
  "$(awk -v v="$(pick "$rss" "$runs")" 'BEGIN{printf "%.1f", v/1024}')"
rm -f "$out" "$out.one"
