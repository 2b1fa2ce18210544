#!/usr/bin/env bash
# Writes the shell completions into completions/ (committed; a test fails when they are
# stale) and the manual pages into manpages/ (generated at release time). goreleaser runs
# it as a before-hook; `make completions` runs it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/owlmetry
trap 'rm -rf "$(dirname "$bin")"' EXIT
CGO_ENABLED=0 go build -o "$bin" ./cmd/owlmetry

mkdir -p completions manpages
"$bin" completion bash > completions/owlmetry.bash
"$bin" completion zsh > completions/_owlmetry
"$bin" completion fish > completions/owlmetry.fish
"$bin" completion powershell > completions/owlmetry.ps1
rm -f manpages/*.1
"$bin" man --dir manpages 2>/dev/null
echo "completions/ and manpages/ are up to date"
