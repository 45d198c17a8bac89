#!/usr/bin/env bash
# Installs every Debian package and Go tool flikpay needs on a fresh Debian bookworm machine.
# Used by scripts/run.sh, scripts/test.sh, CI and the Dockerfile; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libssl-dev openssl nlohmann-json3-dev libhiredis-dev
  libcurl4-openssl-dev libcpp-httplib-dev libgtest-dev libgmock-dev
  redis-server redis-tools clang-format curl
)

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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# grpcurl is the tool engineers explore the API with (server reflection is on).
if [ "${FLIKPAY_SKIP_GO_TOOLS:-0}" != 1 ] && command -v go >/dev/null 2>&1; then
  gobin="$(go env GOPATH)/bin"
  if [ ! -x "$gobin/grpcurl" ]; then
    echo "install-deps: go install grpcurl"
    go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.1
  fi
fi
