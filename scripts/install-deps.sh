#!/usr/bin/env bash
# Installs every Debian package and Go tool flikpay needs on a fresh Debian bookworm machine.
# Used by scripts/run.sh, scripts/test.sh, scripts/fresh-check.sh, CI and the Dockerfile; safe to
# run again. scripts/fresh-check.sh proves this list is complete on a bare bookworm root.
set -euo pipefail

# One line per reason, so a missing package is easy to spot against CMakeLists.txt.
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates  # toolchain; git lists sources
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # gRPC API
  libabsl-dev libssl-dev nlohmann-json3-dev libpugixml-dev  # Status, crypto, JSON, XML v2 callbacks
  libhiredis-dev libcurl4-openssl-dev libcpp-httplib-dev  # Redis, Bankart client, bankart-sim
  prometheus-cpp-dev  # /metrics: the registry and text exposition (prometheus-cpp::core only)
  libboost-dev  # Beast/Asio, header-only: server HTTP listeners (limits httplib 0.11 cannot set)
  libgtest-dev libgmock-dev redis-server redis-tools openssl curl clang-format  # tests and checks
  # On a host with systemd, Debian's redis-sentinel may also start a system sentinel on 26379
  # (systemctl disable --now redis-sentinel if unwanted); the tests start their own, on ports of
  # their own, and never use it.
  redis-sentinel  # redis_sentinel_test, e2e_failover_test: redis-server x3 under redis-sentinel x3
  clang  # checks Abseil's lock annotations (-Wthread-safety); GCC cannot
  libclang-rt-14-dev  # libFuzzer and clang's sanitizer runtimes, for the parser fuzzing
  binutils  # readelf: tests/hardening_test.sh checks the built binaries' hardening
  python3  # scripts/bench.sh (ports, CPU from /proc, the table), tests/helm_test.sh
)
# grpcurl (the tool the run command prints), helm and ghz (scripts/bench.sh) are built with Go;
# Debian's Go when none is installed. python3-yaml: tests/helm_test.sh parses the chart's rendered
# manifests.
if [ "${FLIKPAY_SKIP_GO_TOOLS:-0}" != 1 ]; then
  packages+=(python3-yaml)
  command -v go >/dev/null 2>&1 || packages+=(golang-go)
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$pkg")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# grpcurl is the tool engineers explore the API with (server reflection is on). v1.9.1 is the
# newest release whose module asks for no newer Go than bookworm's golang-go (1.19).
GRPCURL_VERSION=v1.9.1
if [ "${FLIKPAY_SKIP_GO_TOOLS:-0}" != 1 ]; then
  gobin="$(go env GOPATH)/bin"
  if [ ! -x "$gobin/grpcurl" ]; then
    echo "install-deps: go install grpcurl@$GRPCURL_VERSION"
    GOFLAGS=-buildvcs=false go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
  fi
fi

# helm, for tests/helm_test.sh (helm lint and helm template on helm/flikpay). helm v3.16 needs Go
# 1.22 or later; bookworm's golang-go is 1.19, which has no GOTOOLCHAIN switching. Then we do what
# GOTOOLCHAIN would: take Go's own toolchain module, golang.org/toolchain, from the Go module proxy
# (`go mod download` checks it against the checksum database; its zip is also checked against the
# pinned SHA-256 below), make its commands executable, and build helm with it. The toolchain stays
# in the module cache; nothing is installed system-wide. FLIKPAY_FORCE_GO_TOOLCHAIN=1 takes that
# path whatever Go the machine has (to test it).
# ghz, the gRPC load generator of scripts/bench.sh (and of its smoke run in scripts/test.sh), is
# built the same way: v0.120.0 is the newest release whose module asks for Go 1.18 (v0.121.0 asks
# for 1.23), but a dependency of it (prometheus/common v0.53.0) asks for Go 1.20, so it is built
# with the same Go as helm.
HELM_VERSION=v3.16.4
GHZ_VERSION=v0.120.0
GO_TOOLCHAIN=go1.22.12
GO_TOOLCHAIN_MODULE=golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-amd64
GO_TOOLCHAIN_ZIP_SHA256=d426bcf50497ae8665e741482aba04fc12782e8860857229d4005dcc480fd89b
GO_TOOLCHAIN_SUM=h1:Hdh4VJAlDWzMnhKpqDwqJJr+sE7NgsJ86dyR4wrv2oY=

# json_field NAME JSON: the value of a string field of `go mod download -json`'s answer.
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$2"; }

# Prints the go command to build helm and ghz with: the machine's when it is new enough (1.22),
# else the toolchain.
go_for_tools() {
  local version minor download zip dir sum
  version=$(go env GOVERSION)
  minor=$(sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p' <<<"$version")
  if [ "${FLIKPAY_FORCE_GO_TOOLCHAIN:-0}" != 1 ] && { [ -z "$minor" ] || [ "$minor" -ge 22 ]; }; then
    command -v go
    return
  fi
  if [ "$(uname -m)" != x86_64 ]; then
    echo "install-deps: $version is older than helm $HELM_VERSION and ghz $GHZ_VERSION need" \
      "(1.22), and the pinned toolchain is for linux-amd64 only: install a newer Go" >&2
    return 1
  fi
  if [ "${FLIKPAY_FORCE_GO_TOOLCHAIN:-0}" = 1 ]; then
    echo "install-deps: FLIKPAY_FORCE_GO_TOOLCHAIN=1: helm and ghz with $GO_TOOLCHAIN from the" \
      "Go module proxy" >&2
  else
    echo "install-deps: $version is too old for helm $HELM_VERSION and ghz $GHZ_VERSION; using" \
      "$GO_TOOLCHAIN from the Go module proxy" >&2
  fi
  download=$(cd / && go mod download -json "$GO_TOOLCHAIN_MODULE")
  zip=$(json_field Zip "$download")
  dir=$(json_field Dir "$download")
  sum=$(json_field Sum "$download")
  if [ "$sum" != "$GO_TOOLCHAIN_SUM" ] ||
    [ "$(sha256sum "$zip" | cut -d' ' -f1)" != "$GO_TOOLCHAIN_ZIP_SHA256" ]; then
    echo "install-deps: $GO_TOOLCHAIN_MODULE does not match its pinned checksums" >&2
    return 1
  fi
  # Module zips carry no file modes; the go command marks a downloaded toolchain's commands
  # executable the same way before it runs one.
  [ -x "$dir/bin/go" ] || chmod +x "$dir"/bin/* "$dir"/pkg/tool/linux_amd64/*
  echo "$dir/bin/go"
}

if [ "${FLIKPAY_SKIP_GO_TOOLS:-0}" != 1 ]; then
  gobin="$(go env GOPATH)/bin"
  helm_built=""
  [ -x "$gobin/helm" ] &&
    helm_built=$(go version -m "$gobin/helm" | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" { print $3 }')
  if [ "$helm_built" != "$HELM_VERSION" ] || [ "${FLIKPAY_FORCE_GO_TOOLCHAIN:-0}" = 1 ]; then
    helm_go=$(go_for_tools)
    echo "install-deps: go install helm@$HELM_VERSION ($("$helm_go" env GOVERSION))"
    # GOROOT from the command's own place; GOTOOLCHAIN=local so a newer go never switches again.
    env -u GOROOT GOTOOLCHAIN=local GOBIN="$gobin" GOFLAGS=-buildvcs=false \
      "$helm_go" install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  ghz_built=""
  [ -x "$gobin/ghz" ] &&
    ghz_built=$(go version -m "$gobin/ghz" |
      awk '$1 == "mod" && $2 == "github.com/bojand/ghz" { print $3 }')
  if [ "$ghz_built" != "$GHZ_VERSION" ] || [ "${FLIKPAY_FORCE_GO_TOOLCHAIN:-0}" = 1 ]; then
    ghz_go=$(go_for_tools)
    echo "install-deps: go install ghz@$GHZ_VERSION ($("$ghz_go" env GOVERSION))"
    env -u GOROOT GOTOOLCHAIN=local GOBIN="$gobin" GOFLAGS=-buildvcs=false \
      "$ghz_go" install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  fi
fi
