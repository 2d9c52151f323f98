#!/usr/bin/env bash
# Toxiproxy, the TCP fault injector of the chaos campaign (`make chaos`, tests/chaos/):
# the pinned server built with `go install` from the Go module proxy into the cache, the way
# the local Kafka's jars come from Maven. Idempotent: once built, a run only checks the file.
# Prints one line: the binary's path.
#
#   --optional   without a Go toolchain, say so and exit 0 (the chaos tests then skip with
#                that reason); a build that fails with Go present still fails.
# Env: TOXIPROXY_VERSION (default below), CARTRIDGE_WARP_CACHE (default
#      ${XDG_CACHE_HOME:-~/.cache}/cartridge-warp), GO (the go binary; default: `go` on PATH,
#      then /usr/local/go/bin/go). tests/chaos/toxiproxy.py shares this layout.
set -euo pipefail

optional=0
[[ "${1:-}" == "--optional" ]] && optional=1

version="${TOXIPROXY_VERSION:-v2.12.0}"
cache="${CARTRIDGE_WARP_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/cartridge-warp}"
bin_dir="$cache/toxiproxy-$version"
bin="$bin_dir/toxiproxy-server"

if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi

go_bin="${GO:-$(command -v go || true)}"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
if [[ -z "$go_bin" || ! -x "$go_bin" ]]; then
    echo "install-toxiproxy: no Go toolchain (need go >= 1.23 on PATH, or GO=/path/to/go);" \
        "cannot build toxiproxy $version, so the chaos tests will skip" >&2
    exit $((1 - optional))
fi

mkdir -p "$bin_dir"
tmp_bin="$(mktemp -d "$cache/.toxiproxy-gobin.XXXXXX")"
log="$bin_dir/install.log"
trap 'rm -rf "$tmp_bin"' EXIT

echo "install-toxiproxy: building toxiproxy $version with $go_bin (about 30-45 s, once)" >&2
# Everything go touches lives under $cache, so a fresh machine (or a CI root with its own
# ~/.config/go/env) gets the same binary. -modcacherw keeps the module cache removable;
# GOTOOLCHAIN=local never downloads a toolchain; CGO_ENABLED=0 needs no C compiler.
if ! env GOPATH="$cache/go" GOMODCACHE="$cache/go/pkg/mod" GOCACHE="$cache/go-build" \
    GOBIN="$tmp_bin" GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
    GO111MODULE=on \
    "$go_bin" install "github.com/Shopify/toxiproxy/v2/cmd/server@$version" >"$log" 2>&1; then
    echo "install-toxiproxy: 'go install github.com/Shopify/toxiproxy/v2/cmd/server@$version'" \
        "failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi

# `go install .../cmd/server` names the binary "server"; the rename is atomic, so installers
# running side by side never see a half-written file.
mv -f "$tmp_bin/server" "$bin"
echo "$bin"
