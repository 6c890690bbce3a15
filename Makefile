# calicoctl — build, test, benchmark.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG       := github.com/opencalico/calicoctl
LDFLAGS   := -s -w -X $(PKG)/internal/version.GitCommit=$(COMMIT) -X $(PKG)/internal/version.BuildDate=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)
export CGO_ENABLED ?= 0

.PHONY: all build install install-cni test test-short bench lint fuzz docs clean kube-apiserver

all: build

## build: the static binary bin/calicoctl (and the kubectl-calico link)
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/calicoctl ./cmd/calicoctl
	ln -sf calicoctl $(BIN)/kubectl-calico

## install: copy the binary to $(PREFIX)/bin and link kubectl-calico beside it
PREFIX ?= /usr/local
install: build
	install -m 0755 $(BIN)/calicoctl $(PREFIX)/bin/calicoctl
	ln -sf calicoctl $(PREFIX)/bin/kubectl-calico

## install-cni: link the binary into the CNI bin directory as calico and calico-ipam
CNI_BIN_DIR ?= /opt/cni/bin
install-cni: install
	mkdir -p $(CNI_BIN_DIR)
	ln -sf $(PREFIX)/bin/calicoctl $(CNI_BIN_DIR)/calico
	ln -sf $(PREFIX)/bin/calicoctl $(CNI_BIN_DIR)/calico-ipam

## kube-apiserver: build upstream kube-apiserver and kubectl from the module proxy (cached; ~5 min cold)
kube-apiserver:
	e2e/kubeapiserver/build.sh
	e2e/kubeapiserver/build.sh kubectl

## test: everything CI checks (unit, datastore conformance on embedded etcd and on a real
## kube-apiserver, CLI e2e)
test: export KUBE_APISERVER_BIN = $(shell e2e/kubeapiserver/build.sh)
test: export KUBECTL_BIN = $(shell e2e/kubeapiserver/build.sh kubectl)
## (Helm v4, cached like the API server: the chart's render check and the cluster's helm install)
test: export HELM_BIN = $(shell e2e/kubeapiserver/build.sh helm)
test: kube-apiserver
	@# As root, e2e/k8s runs a real cluster: build its Kubernetes binaries first (cached) rather
	@# than inside the test while other packages run.
	@if [ "$$(id -u)" = 0 ]; then for b in kubelet kube-controller-manager kube-scheduler; do e2e/kubeapiserver/build.sh $$b >/dev/null; done; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short ./...

## bench: Go benchmarks (not part of test); see docs/benchmarks.md. They include the BGP scale
## benchmarks of e2e/bgpbench (about 8 min; bench-bgp runs only those)
bench: export KUBE_APISERVER_BIN = $(shell e2e/kubeapiserver/build.sh)
bench: kube-apiserver
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

## bench-bgp: the BGP scale benchmarks alone (mesh of 100, reflector of 1,000 clients: ours and BIRD)
.PHONY: bench-bgp
bench-bgp:
	$(GO) test -run '^$$' -bench BGP -benchtime 1x -v -timeout 30m ./e2e/bgpbench/

## bench-policy: the network policy benchmarks alone (issue 11; the Privileged ones need root and
## the nft CLI, and write to a scratch netns)
.PHONY: bench-policy
bench-policy:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200x -timeout 30m ./node/policy/

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...

## fuzz: run the selector parser fuzzer for a minute
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./resources/selector/

## docs: regenerate the command reference in docs/reference from cobra
docs:
	$(GO) run ./cmd/docgen docs/reference

clean:
	rm -rf $(BIN) dist

## manifests: regenerate manifests/crds.yaml (and the CRD field descriptions) from the Go types, and
## manifests/calico-node.yaml from the Helm chart charts/calico with its default values
.PHONY: manifests
manifests:
	$(GO) run ./cmd/crdgen
	$(GO) run ./cmd/manifestgen

## node-image: the calico-node image as an OCI image layout tarball, without Docker: /calicoctl and
## this machine's nft CLI with its libraries (cmd/ociimage -ldd). Load it with
## `ctr -n k8s.io images import dist/calico-node.tar`.
NODE_IMAGE ?= ghcr.io/opencalico/calico-node:latest
.PHONY: node-image
node-image: build
	mkdir -p dist
	$(GO) run ./cmd/ociimage -o dist/calico-node.tar -name $(NODE_IMAGE) -entrypoint /calicoctl \
	  -file $(BIN)/calicoctl:/calicoctl -file $$(command -v nft):/usr/sbin/nft -ldd

## chart-check: build Helm (v4.3.2, module proxy, cached; ~2.5 min once), lint charts/calico and
## check that `helm template` renders the same objects as internal/chart (TestHelmTemplateAgrees, which
## otherwise skips)
.PHONY: chart-check
chart-check:
	$$(e2e/kubeapiserver/build.sh helm) lint charts/calico
	HELM_BIN=$$(e2e/kubeapiserver/build.sh helm) $(GO) test -count=1 -run TestHelmTemplateAgrees -v ./internal/chart/

## e2e-k8s: a real two-node Kubernetes cluster (kube-apiserver, controller-manager, scheduler, and per
## node containerd + kubelet in namespaces) installs manifests/ and runs pods on our CNI (root; needs
## apt packages containerd runc containernetworking-plugins busybox-static nftables; the Kubernetes
## binaries are built once from the module proxy and cached)
.PHONY: e2e-k8s
e2e-k8s:
	@test "$$(id -u)" = 0 || { echo "make e2e-k8s needs root: it runs kubelets, containerd, namespaces and cgroups"; exit 1; }
	for b in kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler; do e2e/kubeapiserver/build.sh $$b >/dev/null; done
	$(GO) test ./e2e/k8s/ -run '^TestPrivileged' -count=1 -v -timeout 15m

## e2e: the multi-node cluster scenarios in network namespaces (root needed)
.PHONY: e2e demo
e2e:
	@test "$$(id -u)" = 0 || { echo "make e2e needs root: it creates network namespaces, veths and routes"; exit 1; }
	$(GO) test ./e2e/cluster/... -count=1 -v -timeout 10m
	$(MAKE) e2e-vm

## demo: two nodes with two pods each in network namespaces; prints routes, blocks, endpoints, pings; tears down (root needed)
demo: build
	@test "$$(id -u)" = 0 || { echo "make demo needs root: it creates network namespaces, veths and routes"; exit 1; }
	CALICO_DEMO=1 CALICO_E2E_BIN=$(abspath $(BIN)/calicoctl) $(GO) test ./e2e/cluster/ -run '^TestDemo$$' -count=1 -v

## e2e-vm: the IPIP scenarios inside a qemu (TCG) VM booting Debian's stock kernel, which has
## the ipip module this kernel lacks (root; ~1 min; skips without qemu-system-x86 and
## linux-image-amd64). Debug with e2e/vm/run.sh (VM_RUN=<guest -test.run pattern>).
.PHONY: e2e-vm
e2e-vm:
	@if ! command -v qemu-system-x86_64 >/dev/null || ! ls /boot/vmlinuz-* >/dev/null 2>&1; then \
	  echo "e2e-vm: SKIP: needs qemu-system-x86, linux-image-amd64 and busybox-static (apt-get install them); IPIP not tested"; \
	else $(GO) test ./e2e/vm/ -run '^TestPrivilegedIPIPInVM$$' -count=1 -v -timeout 20m; fi
