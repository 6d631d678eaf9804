# containers/image needs these build tags (no gpgme cgo, no storage graph drivers); see README.
export GOFLAGS := -buildvcs=false -tags=containers_image_openpgp,containers_image_storage_stub
GO ?= go
BIN := bin/fmtconv
IMAGES := testdata/images
DEMO_OUT := $(IMAGES)/out

.PHONY: build test test-go demo bench lint testdata peers fuzz fuzz-smoke clean
FUZZTIME ?= 2m

build:
	$(GO) build -o $(BIN) ./cmd/fmtconv

# Every test, with the peers (skopeo, containerd, podman, erofs-utils, ...) installed first, then
# every fuzz target for 10 seconds (their seed corpora already ran as unit tests), then a build
# where int has 32 bits (386), which 64-bit-only constants and syscall field types break.
test: peers
	$(GO) test -count=1 -timeout 15m ./...
	scripts/fuzz.sh 10s
	GOARCH=386 $(GO) build ./...

# Tests only, for a machine that already has the peers.
test-go:
	$(GO) test -count=1 -timeout 18m ./...

peers:
	scripts/setup-peers.sh

# Every fuzz target for FUZZTIME (default 2m).
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

testdata:
	rm -rf $(IMAGES)/gen && $(GO) run ./internal/testimages/cmd/genimages $(IMAGES)/gen

# Converts a generated sample image to every target and prints each per-layer report.
demo: build testdata
	@rm -rf $(DEMO_OUT)
	@for t in uncompressed gzip zstd zstd:chunked estargz nydus; do \
		tag=$$(echo $$t | tr : -); echo "== fmtconv convert oci:$(IMAGES)/gen/multi-format:latest oci:$(DEMO_OUT):$$tag --to $$t"; \
		./$(BIN) convert oci:$(IMAGES)/gen/multi-format:latest "oci:$(DEMO_OUT):$$tag" --to $$t --report $(DEMO_OUT)-$$tag.json || exit 1; \
		./$(BIN) verify "oci:$(DEMO_OUT):$$tag" | tail -1 || exit 1; \
	done

# Flags for internal/bench, e.g. make bench BENCHFLAGS="-main=false -big" or BENCHFLAGS="-only nydus -reps 5".
BENCHFLAGS ?=
bench: build
	$(GO) run ./internal/bench $(BENCHFLAGS)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	GOARCH=386 $(GO) vet ./...

clean:
	rm -rf bin $(IMAGES)/gen $(DEMO_OUT) $(DEMO_OUT)-*.json
