# Postern — build, run, test, bench, fuzz.
VERSION  ?= $(shell cat VERSION)
BUILD    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X postern/firmware.Version=$(VERSION) -X postern/firmware.Build=$(BUILD)
GO       ?= go
FUZZTIME ?= 30s

.PHONY: build run test deps vet bench fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/postern .

# One appliance on the embedded default: data in ./var, listeners on 127.0.0.1.
run: build
	./bin/postern serve

# Installs missing Debian test tools (as root), then vets and runs every test.
test: deps vet
	$(GO) test -count=1 -timeout 14m ./...

deps:
	bash .ci/deps.sh

vet:
	$(GO) vet ./...

# Side-by-side benchmarks against slapd and Postfix on this machine, then every
# target with met / not met (bench/targets.sh). Knobs: see each script's head
# (BENCH_JOIN_ENTRIES=1000000: the size of the joined tree, 0 skips the join).
BENCHES := ldap smtp replication frontend secure join
bench: deps build
	@rm -f $(patsubst %,bench/out/%-latest.txt,$(BENCHES)); rc=0; \
	for b in $(BENCHES); do bash bench/$$b.sh || { echo "bench/$$b.sh failed" >&2; rc=1; }; done; \
	bash bench/targets.sh; exit $$rc

# Runs every fuzz target for FUZZTIME each.
fuzz:
	bash .ci/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
