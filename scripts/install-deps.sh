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
  libboost-dev  # Beast/Asio, header-only: server HTTP listeners (limits httplib 0.11 cannot set)
  libgtest-dev libgmock-dev redis-server redis-tools openssl curl clang-format  # tests and checks
  clang  # checks Abseil's lock annotations (-Wthread-safety); GCC cannot
  libclang-rt-14-dev  # libFuzzer and clang's sanitizer runtimes, for the parser fuzzing
  binutils  # readelf: tests/hardening_test.sh checks the built binaries' hardening
)
# grpcurl (the tool the run command prints) is built with Go; Debian's Go when none is installed.
if [ "${FLIKPAY_SKIP_GO_TOOLS:-0}" != 1 ] && ! command -v go >/dev/null 2>&1; then
  packages+=(golang-go)
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
