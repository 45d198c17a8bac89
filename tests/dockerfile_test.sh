#!/usr/bin/env bash
# The Dockerfile's shape, read without a Docker engine (scripts/dockerfile-build-stage.sh):
# - the build stage installs with scripts/install-deps.sh and builds the binaries as CI does
#   (scripts/fresh-check.sh runs that stage on a bare root);
# - two targets: `sandbox` (flikpay-server and bankart-sim) and `server`, the production image,
#   which is the last stage (Docker's default) and holds no bankart-sim: its control API takes no
#   credentials;
# - both start from debian:bookworm-slim, run as a numeric non-root USER (Kubernetes'
#   runAsNonRoot can only check a number), keep TMPDIR=/tmp (the one place the server writes,
#   an emptyDir under readOnlyRootFilesystem) and install without recommends or apt lists.
# Every rule is then broken in a copy of the Dockerfile, and the check must refuse each copy for
# that rule's reason, so no rule can pass vacuously. Which libraries the runtime stage must
# install is proven by scripts/fresh-check.sh (ldd and dpkg -S on a bare root), not here.
set -euo pipefail
root=${1:?usage: dockerfile_test.sh SOURCE_DIR}
cd "$root"
fail() { echo "FAIL: $*" >&2; exit 1; }
tool=scripts/dockerfile-build-stage.sh

# check FILE: prints the first broken rule and returns 1, or prints nothing and returns 0.
check() (
  file=$1
  broken() { echo "$*"; exit 1; }
  stage=$(bash "$tool" "$file" 2>&1) || broken "build stage rejected: $stage"
  grep -q 'bash scripts/install-deps.sh' <<<"$stage" || broken "install script not run"
  grep -qx 'export FLIKPAY_SKIP_GO_TOOLS=1' <<<"$stage" ||
    broken "the build stage does not set FLIKPAY_SKIP_GO_TOOLS=1 (no Go tools in an image)"
  grep -q 'cmake -S . -B build -G Ninja' <<<"$stage" || broken "no Ninja configure in the build stage"
  for target in flikpay-server bankart-sim; do
    grep -Eq "cmake --build build .*--target .*$target" <<<"$stage" || broken "$target not built"
  done

  stages=$(bash "$tool" --stages "$file")
  for target in server sandbox; do
    grep -qx "$target" <<<"$stages" || broken "no stage named $target"
  done
  [ "$(tail -n 1 <<<"$stages")" = server ] ||
    broken "the last stage (the image a plain docker build makes) is $(tail -n 1 <<<"$stages"), not server"

  for target in server sandbox; do
    described=$(bash "$tool" --describe "$file" "$target") || broken "cannot read stage $target"
    [ "$(sed -n 1p <<<"$described")" = "BASE debian:bookworm-slim" ] ||
      broken "$target: starts from $(sed -n '1s/^BASE //p' <<<"$described"), not debian:bookworm-slim"
    user=$(sed -n 's/^USER //p' <<<"$described" | tail -n 1)
    [[ "$user" =~ ^[0-9]+(:[0-9]+)?$ ]] || broken "$target: USER '${user:-none}' is not numeric"
    [[ "${user%%:*}" != 0 && "$user" != *:0 ]] || broken "$target: USER $user is root"
    grep -qx 'ENV TMPDIR=/tmp' <<<"$described" || broken "$target: no ENV TMPDIR=/tmp"
    grep -qx 'ENTRYPOINT \["/usr/local/bin/flikpay-server"\]' <<<"$described" ||
      broken "$target: the entrypoint is not /usr/local/bin/flikpay-server"
    installs=$(grep '^RUN .*apt-get install' <<<"$described") ||
      broken "$target: installs nothing with apt-get"
    grep -q -- '--no-install-recommends' <<<"$installs" ||
      broken "$target: apt-get install without --no-install-recommends"
    grep -q 'rm -rf /var/lib/apt/lists/\*' <<<"$installs" ||
      broken "$target: the apt lists stay in the image"
    ! grep -q '^ADD ' <<<"$described" || broken "$target: ADD (use COPY --from=build)"
    copies=$(grep '^COPY ' <<<"$described" || true)
    if [ "$target" = server ]; then
      [ "$copies" = "COPY --from=build /src/build/server/flikpay-server /usr/local/bin/" ] ||
        broken "server: must copy only flikpay-server, copies: ${copies:-nothing}"
    else
      for binary in server/flikpay-server gateway/bankart-sim; do
        grep -Eq "^COPY --from=build( [^ ]+)* /src/build/$binary( [^ ]+)* /usr/local/bin/$" \
          <<<"$copies" || broken "sandbox: does not copy $binary to /usr/local/bin/"
      done
    fi
  done
)

problem=$(check Dockerfile) || fail "Dockerfile: $problem"

# Each mutation: a sed program and a piece of the reason the check must give for refusing it.
# shellcheck disable=SC2016 # sed programs, not shell expansions
mutations=(
  's|bash scripts/install-deps.sh|apt-get update \&\& apt-get install -y build-essential|'
  'install-deps.sh'
  '/^ENV FLIKPAY_SKIP_GO_TOOLS=1$/d'
  'FLIKPAY_SKIP_GO_TOOLS'
  's|--target flikpay-server bankart-sim|--target flikpay-server|'
  'bankart-sim not built'
  's|^FROM runtime AS sandbox$|FROM runtime AS sandbox-tools|'
  'no stage named sandbox'
  's|^FROM runtime AS server$|FROM runtime AS production|'
  'no stage named server'
  '$a FROM runtime AS debug'
  'the last stage'
  's|^FROM debian:bookworm-slim AS runtime$|FROM debian:bookworm AS runtime|'
  'not debian:bookworm-slim'
  's|^USER .*|USER 0|'
  'is root'
  's|^USER .*|USER 10001:0|'
  'is root'
  's|^USER .*|USER flikpay|'
  'not numeric'
  '/^USER /d'
  'not numeric'
  '/^ENV TMPDIR=\/tmp$/d'
  'TMPDIR'
  's|^ENTRYPOINT .*|ENTRYPOINT ["/usr/local/bin/bankart-sim"]|'
  'entrypoint'
  's| --no-install-recommends||'
  'no-install-recommends'
  '/rm -rf \/var\/lib\/apt\/lists/d'
  'apt lists'
  's|^\(COPY --from=build /src/build/server/flikpay-server\) /usr/local/bin/$|\1 /src/build/gateway/bankart-sim /usr/local/bin/|'
  'must copy only flikpay-server'
  's|^\(COPY --from=build .*\) /src/build/gateway/bankart-sim |\1 |'
  'does not copy gateway/bankart-sim'
)
# The context is COPY'd whole: a local build tree would bring another machine's CMake cache (which
# names another source directory, so the image's configure fails) and gigabytes of objects.
for ignored in '/build*/' '/.run/' '.git'; do
  grep -qxF -- "$ignored" .dockerignore 2>/dev/null ||
    fail ".dockerignore does not keep '$ignored' out of the build context"
done

mutant=$(mktemp)
trap 'rm -f "$mutant"' EXIT
for ((i = 0; i < ${#mutations[@]}; i += 2)); do
  program=${mutations[i]}
  reason=${mutations[i + 1]}
  sed -e "$program" Dockerfile >"$mutant"
  ! cmp -s Dockerfile "$mutant" || fail "mutation '$program' changed nothing; update it"
  if problem=$(check "$mutant"); then
    fail "a Dockerfile broken by '$program' was accepted"
  fi
  [[ "$problem" == *"$reason"* ]] ||
    fail "a Dockerfile broken by '$program' was refused for another reason: $problem"
done
echo "PASS: the build stage runs scripts/install-deps.sh and builds both binaries; targets" \
  "sandbox and server (last, no bankart-sim), bookworm-slim, numeric non-root USER," \
  "TMPDIR=/tmp; $((${#mutations[@]} / 2)) broken copies refused"
