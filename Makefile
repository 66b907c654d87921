# make test: everything CI checks. make bench: the benchmarks (not part of test).
SHELL := /bin/bash
GO ?= go

# Every Go module in the repository except the control-plane build tools, which build Kubernetes.
MODULES := $(shell find . -name go.mod -not -path './hack/*' -printf '%h\n' | sort)
# The modules whose tests need the local control plane.
INTEGRATION := ./test/integration

.PHONY: test fmt vet lint modules unit control-plane integration bench

test: fmt vet lint modules unit integration

fmt:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi

vet:
	@set -e; for m in $(MODULES); do echo "go vet $$m"; (cd $$m && $(GO) vet ./...); done

# staticcheck, at the version pinned in hack/lint, on every module. The binary is rebuilt from the
# Go build cache each run (instant when warm) into .bin/, which git ignores.
STATICCHECK := $(CURDIR)/.bin/staticcheck
lint:
	@cd hack/lint && $(GO) build -o $(STATICCHECK) honnef.co/go/tools/cmd/staticcheck
	@set -e; for m in $(MODULES); do echo "staticcheck $$m"; (cd $$m && $(STATICCHECK) ./...); done

# Every nested module requires the library (and contrib modules) at the version released with it,
# the newest in CHANGELOG.md: tags move in lockstep (see the README's Versioning).
modules:
	@hack/check-module-versions.sh

# Unit tests of every module; the integration module skips here and runs below with the binaries.
unit:
	@set -e; for m in $(filter-out $(INTEGRATION),$(MODULES)); do echo "go test $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done

# Builds kube-apiserver and etcd from the Go module proxy once, caches them outside the repo and
# prints their directory (see hack/control-plane.sh).
control-plane:
	@hack/control-plane.sh

integration:
	@assets=$$(hack/control-plane.sh) && cd $(INTEGRATION) && \
	KUBEBUILDER_ASSETS=$$assets KUBEREGISTRY_REQUIRE_INTEGRATION=1 $(GO) test -race -count=1 -timeout 30m ./...

# The benchmarks: in-process Go benchmarks on the fake clientset, then the scenario against a real
# kube-apiserver, which prints the table of docs/BENCHMARKS.md and redraws its chart.
bench:
	@assets=$$(hack/control-plane.sh) && cd bench && \
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./... && \
	KUBEBUILDER_ASSETS=$$assets $(GO) run ./cmd/kuberegistry-bench -svg ../docs/benchmarks.svg
