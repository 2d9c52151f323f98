#!/usr/bin/env bash
# The deploy files' validators for tests/deploy: `promtool` (Prometheus rules and config) from
# Debian's `prometheus` package, and `kustomize` (the Kubernetes overlay) built once with
# `go install` of a pinned version into the cache, as the chaos tests' Toxiproxy is.
# Idempotent: once present, a run only checks. Prints nothing on success.
#
#   --optional   a validator that cannot be had here (not root, no apt-get, no Go) is reported
#                on stderr and its tests skip saying so; a build that fails with Go present
#                still fails.
# Env: KUSTOMIZE_VERSION (default below), CARTRIDGE_WARP_CACHE (default
#      ${XDG_CACHE_HOME:-~/.cache}/cartridge-warp), GO. tests/deploy/support.py finds
#      kustomize in this layout.
set -euo pipefail

optional=0
[[ "${1:-}" == "--optional" ]] && optional=1
missing() {  # missing "why": stderr, then fail unless --optional
  echo "install-validators: $1" >&2
  [[ $optional == 1 ]] || exit 1
}

if ! command -v promtool >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install-validators: installing promtool (Debian package prometheus, once)" >&2
    log=$(mktemp)
    if ! env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        prometheus >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$log"
      missing "apt-get install prometheus failed; the promtool tests will skip"
    fi
    rm -f "$log"
  else
    missing "no promtool (Debian: sudo apt-get install prometheus); the promtool tests will skip"
  fi
fi

version="${KUSTOMIZE_VERSION:-v5.7.1}"
cache="${CARTRIDGE_WARP_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/cartridge-warp}"
bin_dir="$cache/kustomize-$version"
bin="$bin_dir/kustomize"
[[ -x "$bin" ]] && exit 0

go_bin="${GO:-$(command -v go || true)}"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
if [[ -z "$go_bin" || ! -x "$go_bin" ]]; then
  missing "no Go toolchain to build kustomize $version; the kustomize test will skip"
  exit 0
fi
mkdir -p "$bin_dir"
tmp_bin="$(mktemp -d "$cache/.kustomize-gobin.XXXXXX")"
trap 'rm -rf "$tmp_bin"' EXIT
log="$bin_dir/install.log"
echo "install-validators: building kustomize $version with $go_bin (about 3 min, once)" >&2
# Same isolation as install-toxiproxy.sh: everything go touches lives under $cache.
if ! env GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go-build" \
    GOBIN="$tmp_bin" GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
    GO111MODULE=on \
    "$go_bin" install "sigs.k8s.io/kustomize/kustomize/v5@$version" >"$log" 2>&1; then
  echo "install-validators: 'go install sigs.k8s.io/kustomize/kustomize/v5@$version' failed;" \
    "last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
mv -f "$tmp_bin/kustomize" "$bin"
