#!/usr/bin/env bash
# Builds kube-apiserver (default), kubectl, kubelet, kube-controller-manager or
# kube-scheduler (`build.sh NAME`) from the Go module proxy and caches it outside
# the repo, keyed by version. Prints the binary's path on stdout; progress goes to stderr.
#   KUBE_VERSION   release to build (default v1.34.2; staging modules v0.34.2).
#                  Another release needs go.mod/go.sum updated to match.
#   CACHE_DIR      where built binaries are kept (default ${XDG_CACHE_HOME:-$HOME/.cache}/calicoctl)
# Concurrent callers (make, several test packages) serialise on a lock file;
# the one that wins builds, the others find the cached binary.
set -euo pipefail
cd "$(dirname "$0")"
KUBE_VERSION="${KUBE_VERSION:-v1.34.2}"
CACHE_DIR="${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/calicoctl}"
# `build.sh --cached NAME` prints the cached binary's path, or fails without building.
cached_only=
if [ "${1:-}" = "--cached" ]; then cached_only=1; shift; fi
what="${1:-kube-apiserver}"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
case "$what" in
  kube-apiserver) pkg=. ;;
  kubectl|kubelet|kube-controller-manager|kube-scheduler) pkg="./$what" ;;
  helm) pkg=helm.sh/helm/v4/cmd/helm ;;
  *) echo "usage: $0 [--cached] [kube-apiserver|kubectl|kubelet|kube-controller-manager|kube-scheduler|helm]" >&2; exit 2 ;;
esac
version="$KUBE_VERSION"
[ "$what" = helm ] && version="$HELM_VERSION"
out="$CACHE_DIR/$what-$version"
if [ -x "$out" ]; then echo "$out"; exit 0; fi
if [ -n "$cached_only" ]; then echo "$out: not built" >&2; exit 1; fi
mkdir -p "$CACHE_DIR"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_DIR/.$what-$version.lock"
  flock 9
  if [ -x "$out" ]; then echo "$out"; exit 0; fi
fi
echo "building $what $version into $out (a few minutes)" >&2
if [ "$what" = helm ]; then
  # Helm (for the chart check only) is its own module: build it at its version, outside ours.
  tmp="$(mktemp -d)"
  (cd "$tmp" && GOWORK=off GOFLAGS= GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$pkg@$version")
  mv "$tmp/helm" "$out"; rm -rf "$tmp"
  echo "$out"; exit 0
fi
ver="${KUBE_VERSION#v}"
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=${ver%%.*} -X $p.gitMinor=$(echo "$ver" | cut -d. -f2) -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
# go.mod and go.sum are committed: build exactly what they pin, never rewrite them.
GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$out.tmp.$$" "$pkg"
mv "$out.tmp.$$" "$out"
echo "$out"
