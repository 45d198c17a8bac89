#!/usr/bin/env bash
# The Dockerfile's build stage must install with scripts/install-deps.sh and build the binaries
# the runtime stage copies, as CI does; scripts/fresh-check.sh runs that stage on a bare root.
set -euo pipefail
root=${1:?usage: dockerfile_test.sh SOURCE_DIR}
cd "$root"
fail() { echo "FAIL: $*" >&2; exit 1; }

stage=$(bash scripts/dockerfile-build-stage.sh Dockerfile) || fail "build stage rejected"
grep -q 'bash scripts/install-deps.sh' <<<"$stage" || fail "install script not run"
grep -q 'cmake -S . -B build -G Ninja' <<<"$stage" || fail "no Ninja configure in the build stage"
for target in flikpay-server bankart-sim; do
  grep -Eq "cmake --build build .*--target .*$target" <<<"$stage" || fail "$target not built"
  grep -q "^COPY --from=build .*/$target" Dockerfile || fail "$target not copied to the runtime stage"
done

# The check itself must catch drift: a build stage that installs packages its own way is refused.
drifted=$(mktemp)
trap 'rm -f "$drifted"' EXIT
sed 's|bash scripts/install-deps.sh|apt-get update \&\& apt-get install -y build-essential|' \
  Dockerfile >"$drifted"
if bash scripts/dockerfile-build-stage.sh "$drifted" >/dev/null 2>&1; then
  fail "a build stage without scripts/install-deps.sh was accepted"
fi
echo "PASS: the Dockerfile's build stage runs scripts/install-deps.sh and builds both binaries"
