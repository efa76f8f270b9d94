GO ?= go
PKGS := ./...
# bash for pipefail: a test run piped into its summary fails as it should.
SHELL := /bin/bash

.PHONY: all build test test-long vet fmt-check fuzz bench clean completions man lint release-check release-snapshot

all: build

build:
	CGO_ENABLED=0 $(GO) build -o promstore ./cmd/promstore

## test: gofmt check, go vet, then every test with the race detector (a
## few minutes on 2 cores).
## Every skipped test is listed at the end with its reason
## (scripts/testsummary); with CI=true a missing part fails instead.
test: fmt-check vet
	set -o pipefail; $(GO) test -race -count=1 -timeout 20m -json $(PKGS) | $(GO) run ./scripts/testsummary

## test-long: the tests `make test` leaves out because they build or
## generate for minutes (build tag `long`: the release build with
## goreleaser's flags, the large hostile stores). CI runs both.
## The cleanup package's soak tests, the commands package's *Long tests
## and the file store's TestLong* (random stores read again and again,
## reads stopped anywhere) run alone (-run Soak, -run Long, -run TestLong):
## their other tests are make test's.
test-long:
	set -o pipefail; { $(GO) test -race -count=1 -timeout 30m -tags long -json $(LONG_PKGS) && \
		$(GO) test -race -count=1 -timeout 30m -tags long -run Soak -json ./internal/cleanup/ && \
		$(GO) test -race -count=1 -timeout 30m -tags long -run Long -json ./internal/commands/ && \
		$(GO) test -race -count=1 -timeout 30m -tags long -run TestLong -json ./internal/store/filestore/; } | $(GO) run ./scripts/testsummary
LONG_PKGS ?= ./cmd/gendocs/

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzParseShard -fuzztime=$(FUZZTIME) ./internal/store/filestore/
	$(GO) test -run=NONE -fuzz=FuzzStreamShard -fuzztime=$(FUZZTIME) ./internal/store/filestore/
	$(GO) test -run=NONE -fuzz=FuzzInspect -fuzztime=$(FUZZTIME) ./internal/store/filestore/
	$(GO) test -run=NONE -fuzz=FuzzParseKey -fuzztime=$(FUZZTIME) ./internal/store/
	$(GO) test -run=NONE -fuzz=FuzzParseOpenMetrics -fuzztime=$(FUZZTIME) ./internal/compare/

## bench: Go micro-benchmarks (the side-by-side scripts live in scripts/).
bench:
	$(GO) test -run=NONE -bench=. -benchmem $(PKGS)

clean:
	rm -f promstore
	rm -rf dist

## completions, man: regenerate completions/ and man/man1/ from the command
## tree (`make completions man`); cmd/gendocs' test fails when they are stale.
completions:
	$(GO) run ./cmd/gendocs completions

man:
	$(GO) run ./cmd/gendocs man

# Release and lint tools, pinned, installed once outside the repository.
TOOLS ?= $(HOME)/.cache/promstore-tools
GORELEASER_VERSION ?= v2.15.1
GOLANGCI_LINT_VERSION ?= v2.7.2
GORELEASER := $(TOOLS)/goreleaser-$(GORELEASER_VERSION)/goreleaser
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

$(GORELEASER):
	GOBIN=$(dir $@) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

$(GOLANGCI_LINT):
	GOBIN=$(dir $@) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

## lint: golangci-lint with .golangci.yml.
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

## release-check: validate goreleaser.yaml (CI runs this).
release-check: $(GORELEASER)
	$(GORELEASER) check

## release-snapshot: build this platform's binary as a release would, into dist/.
release-snapshot: $(GORELEASER)
	$(GORELEASER) build --snapshot --single-target --clean
