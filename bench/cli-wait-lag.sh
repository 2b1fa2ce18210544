#!/usr/bin/env bash
# Measures how long `owlmetry jobs wait` takes to exit after the run it follows
# completes, through the event stream and through polling (2s and 500ms), against the
# real API, engine and Postgres in process. Prints the benchmark lines; the figures are
# the averages in ms after completed_at and after the handler returned.
# Usage: bench/cli-wait-lag.sh [iterations, a multiple of 10]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
go test -run '^$' -bench 'BenchmarkWaitLag' -benchtime "${n}x" ./internal/commands/ | grep -E '^(Benchmark|ok)'
