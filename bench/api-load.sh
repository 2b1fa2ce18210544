#!/usr/bin/env bash
# API load benchmark: list and trigger latency (p50/p99) at 50 concurrent clients against
# the real server, engine and Postgres. A private Postgres cluster is started for the run
# and removed afterwards. Extra arguments go to the load program, e.g.
#   bench/api-load.sh --clients 50 --duration 20s
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/owlmetry-apiload ./bench/apiload
exec go run ./internal/pgtest/cmd/testcluster -- /tmp/owlmetry-apiload "$@"
