# syntax=docker/dockerfile:1
#
# calicoctl image: one static binary at /calicoctl on an empty base.
#
#   docker build -t calicoctl --build-arg VERSION=$(git describe --tags) .
#   docker buildx build --platform linux/amd64,linux/arm64 -t calicoctl .
#
# In a cluster it runs as the calicoctl pod of manifests/calicoctl.yaml
# (command `/calicoctl pause`); elsewhere the entrypoint is calicoctl itself:
#   docker run --rm -v ~/.kube:/kube:ro -e KUBECONFIG=/kube/config -e DATASTORE_TYPE=kubernetes calicoctl get ippool

# The builder runs on the build machine's platform and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src

# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=
ARG COMMIT=unknown
ARG BUILD_DATE=
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    pkg=github.com/opencalico/calicoctl/internal/version; \
    ldflags="-s -w -X $pkg.GitCommit=$COMMIT -X $pkg.BuildDate=$BUILD_DATE"; \
    if [ -n "$VERSION" ]; then ldflags="$ldflags -X $pkg.Version=$VERSION"; fi; \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
      go build -trimpath -ldflags "$ldflags" -o /out/calicoctl ./cmd/calicoctl

# The node image (`docker build --target node -t ghcr.io/opencalico/calico-node .`): the agent
# programs NAT and network policy with the nft CLI, so it carries nftables. manifests/calico-node.yaml
# runs it. `make node-image` writes the same content as an OCI tarball without Docker.
FROM debian:bookworm-slim AS node
RUN apt-get update && apt-get install -y --no-install-recommends nftables && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/calicoctl /calicoctl
ENTRYPOINT ["/calicoctl"]

# The default target: the CLI image, one static binary.
FROM scratch
# CA roots for API servers and etcd endpoints with publicly signed certificates
# (in-cluster access uses the service account's CA instead).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/calicoctl /calicoctl
USER 65532:65532
ENTRYPOINT ["/calicoctl"]
