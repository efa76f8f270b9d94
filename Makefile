GO ?= go
PKGS := ./...

.PHONY: all build test vet fmt-check fuzz bench clean

all: build

build:
	$(GO) build -o promstore ./cmd/promstore

## test: what CI runs — gofmt check, go vet, then every test with the race detector.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzParseShard -fuzztime=$(FUZZTIME) ./internal/store/filestore/
	$(GO) test -run=NONE -fuzz=FuzzParseKey -fuzztime=$(FUZZTIME) ./internal/store/

## bench: Go micro-benchmarks (the side-by-side scripts live in scripts/).
bench:
	$(GO) test -run=NONE -bench=. -benchmem $(PKGS)

clean:
	rm -f promstore
