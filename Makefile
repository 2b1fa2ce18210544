# owlmetry — build, test and release tasks. `make test` is the one test command: CI and
# the README run exactly it.

GO      ?= go
PKG     := github.com/owlmetry/owlmetry
BIN     := bin/owlmetry
VERSION ?= $(shell v=$$(git describe --tags --exact-match 2>/dev/null) && echo $${v#v} || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG)/internal/build.Version=$(VERSION) -X $(PKG)/internal/build.Commit=$(COMMIT) -X $(PKG)/internal/build.Date=$(DATE)
# Tests share one private Postgres cluster, started and stopped around the whole run.
TESTCLUSTER := $(GO) run ./internal/pgtest/cmd/testcluster --
TESTFLAGS   ?= -race -count=1 -timeout 40m

.PHONY: build test lint bench demo completions clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/owlmetry

test:
	$(TESTCLUSTER) $(GO) test $(TESTFLAGS) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(TESTCLUSTER) $(GO) test -run '^$$' -bench . -benchtime 3s ./...

# The whole system on this machine: owlmetry dev, a ratings sync with its live bar, the
# run list and the schedules, then everything stops again.
demo: build
	./scripts/demo.sh

# Regenerate the committed shell completions (and the release's manual pages).
completions:
	./scripts/gen-docs.sh

clean:
	rm -rf bin
