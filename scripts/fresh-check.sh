#!/usr/bin/env bash
# Proves the README's two commands and the Dockerfile on a fresh machine. Packages installed by hand
# stay on a developer's machine and on CI's, so a green CI alone can hide a missing install step;
# this builds a bare Debian bookworm root with mmdebstrap, copies the working tree in (tracked files
# and untracked ones git does not ignore, plus .git), and inside it, with chroot and nothing from
# the host but the network:
#   1. runs the Dockerfile's build stage (its ENV and RUN lines, in /src as Docker would), then
#      tests/hardening_test.sh on the binaries it leaves (the ones the images ship);
#   2. proves both images' packages (the image check): on a copy of the bare root taken before
#      anything was installed (the package selection of debian:bookworm-slim: minbase, i.e.
#      Essential and Priority: required, plus apt), runs the server stage's RUN lines and copies
#      flikpay-server in as that stage does, maps every library `ldd` resolves in the build root to
#      its package with `dpkg -S`, fails naming any package the stage does not install, and
#      requires `ldd` in that root to find everything; then the same for the sandbox stage's own
#      lines and bankart-sim; then starts flikpay-server (mutual TLS,
#      a caller policy, Redis from the build root) and bankart-sim as the Dockerfile's USER, with
#      its ENV, on a read-only bind of the image root with a tmpfs on /tmp (a Kubernetes pod with
#      readOnlyRootFilesystem and an emptyDir at /tmp), and checks /readyz, the TLS handshake and
#      the sim's health;
#   3. runs the README's test command, scripts/test.sh (the release pass only: the sanitizer pass
#      doubles the time and checks the code, not the install; the host's test run has it);
#   4. runs the README's run command, scripts/run.sh, and executes the grpcurl lines it prints,
#      checking that the payment they take reaches SUCCESS and is refunded.
# Needs root (CI runs as root). FRESH_KEEP=1 keeps the roots for inspection. FRESH_ONLY=image stops
# after step 2, for work on the Dockerfile (the root and the build are most of that time; the image
# check itself takes about 10 seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check: needs root (mmdebstrap --mode=root, mount, chroot)" >&2
  exit 1
fi
case "${FRESH_ONLY:-}" in
"" | image) ;;
*) echo "fresh-check: FRESH_ONLY is empty or image, not '$FRESH_ONLY'" >&2; exit 1 ;;
esac
if ! command -v mmdebstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

work=$(mktemp -d /var/tmp/flikpay-fresh.XXXXXX)
rootfs="$work/root"    # the build root: the build stage, the test and run commands
image="$work/image"    # the image root: the bare root plus the runtime stage and the binaries
view="$work/image-ro"  # the image root as a container sees it: read-only, a tmpfs on /tmp
mounts=()
unmount_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  mounts=()
}
cleanup() {
  # Stop whatever the run command or the image check left in a root before its mounts go.
  local pid_dir
  for pid_dir in /proc/[0-9]*; do
    case "$(readlink "$pid_dir/root" 2>/dev/null)" in
    "$rootfs" | "$image" | "$view") kill -9 "${pid_dir#/proc/}" 2>/dev/null ;;
    esac
  done
  unmount_all
  if [ "${FRESH_KEEP:-0}" = 1 ]; then
    echo "fresh-check: roots kept in $work"
  elif grep -q " $work" /proc/mounts; then
    echo "fresh-check: $work still has mounts; not removing it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step() { printf '\n== fresh-check: %s (%ds)\n' "$*" "$SECONDS"; }
fail() { echo "fresh-check: $*" >&2; exit 1; }

# The same Debian archive the host reaches. The Valid-Until check is off as on the host, whose
# mirror serves a dated snapshot; it is written into the root's apt configuration too.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources="deb http://deb.debian.org/debian bookworm main"
step "mmdebstrap: a minimal bookworm root"
mmdebstrap --mode=root --variant=minbase --quiet \
  --aptopt='Acquire::Check-Valid-Until "false"' bookworm "$rootfs" "$sources"
# The image check's starting point, before anything is added: minbase is what debian:bookworm-slim
# holds (Essential and Priority: required packages, plus apt).
cp -a "$rootfs" "$image"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
cp /etc/resolv.conf "$image/etc/resolv.conf"
# The machine's trust anchors belong to the machine like its network (this workplace's egress
# proxy presents its own CA): one file per certificate, so the root's own ca-certificates package,
# when install-deps.sh installs it, builds them into its bundle. Not in the image root: it reaches
# the archive over http and the image check's TLS is all on loopback, with its own certificate.
mkdir -p "$rootfs/usr/local/share/ca-certificates"
awk -v dir="$rootfs/usr/local/share/ca-certificates" '
  /BEGIN CERTIFICATE/ { n++ }
  n { print > (dir "/machine-" n ".crt") }
  /END CERTIFICATE/ { close(dir "/machine-" n ".crt") }
' /etc/ssl/certs/ca-certificates.crt

# Kernel file systems only; /dev is a private tmpfs with the usual nodes, never the host's /dev,
# so nothing done in the root (or a failed clean-up) can touch the host's devices.
mount_in_root() {
  mount "$@"
  mounts+=("${!#}")
}
mount_kernel_fs() {
  local root=$1 node name major minor
  mount_in_root -t proc proc "$root/proc"
  mount_in_root -t sysfs -o ro sysfs "$root/sys"
  mount_in_root -t tmpfs -o mode=755,nosuid devtmp "$root/dev"
  for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$node"
    mknod -m 666 "$root/dev/$name" c "$major" "$minor"
  done
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  mount_in_root -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  mount_in_root -t tmpfs -o mode=1777 shm "$root/dev/shm"
  ln -s /proc/self/fd "$root/dev/fd"
}
mount_kernel_fs "$rootfs"
mount_kernel_fs "$image"

copy_checkout() {
  local dest="$rootfs$1"
  mkdir -p "$dest"
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done |
    tar --null -T - -cf - | tar -xf - -C "$dest"
  cp -a .git "$dest/.git"
}

# expect PATTERN FILE WHAT: fail with a sentence instead of a bare grep status.
expect() {
  grep -q -- "$1" "$2" || fail "expected: $3 (no '$1' in ${2#"$work"})"
}

# Inside the root: a login-like environment with nothing of the host's variables but CI.
root_env=(/usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}"
  PATH=/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
in_root() { chroot "$rootfs" "${root_env[@]}" "$@"; }
in_image() { chroot "$image" "${root_env[@]}" "$@"; }

step "Dockerfile build stage, as Docker would run it"
copy_checkout /src
# The Dockerfile as copied, so every stage is read from the same snapshot of the tree.
dockerfile="$rootfs/src/Dockerfile"
stage_tool() { bash "$rootfs/src/scripts/dockerfile-build-stage.sh" "$@"; }
script=$(stage_tool "$dockerfile")
printf '%s\n' "$script"
in_root bash -c "$script"
in_root bash -c 'cd /src && bash tests/hardening_test.sh build'

image_check() {
  step "image check: each image's packages on the bare root, ldd and dpkg -S, a read-only start"
  local started=$SECONDS
  # The production image (server) installs only what flikpay-server loads; the sandbox image is
  # built FROM the same runtime stage and adds bankart-sim's libraries with lines of its own. So
  # the server stage's lines run first and flikpay-server is proven on that root alone, then the
  # sandbox's extra lines run and bankart-sim is proven on the result.
  local server_script sandbox_script extra_script
  server_script=$(stage_tool "$dockerfile" server)
  sandbox_script=$(stage_tool "$dockerfile" sandbox)
  [[ "$sandbox_script" == "$server_script"* ]] ||
    fail "the sandbox stage must be built FROM the server's runtime stage (its lines first)"
  extra_script="set -euo pipefail${sandbox_script#"$server_script"}"
  printf '%s\n' "$sandbox_script"
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
  in_image dpkg-query -W -f='${Package}\n' | sort >"$work/base-packages"

  # COPY --from=build lines of a stage: SOURCE... DESTINATION, copied from the build root as
  # Docker copies from the build stage (root-owned, modes kept). Sets `built` and `shipped`.
  local built=() shipped=()
  copy_binaries() {
    local copies line words sources source destination
    built=()
    shipped=()
    copies=$(stage_tool --describe "$dockerfile" "$1" | grep '^COPY ' || true)
    [ -n "$copies" ] || fail "the $1 stage copies nothing"
    while IFS= read -r line; do
      read -r -a words <<<"${line#COPY }"
      [ "${words[0]}" = --from=build ] || fail "cannot reproduce '$line' (only COPY --from=build)"
      sources=("${words[@]:1:${#words[@]}-2}")
      destination=${words[-1]}
      [[ "$destination" == */ ]] || fail "'$line': the destination must be a directory (end in /)"
      mkdir -p "$image$destination"
      for source in "${sources[@]}"; do
        cp --preserve=mode "$rootfs$source" "$image$destination"
        built+=("$source")
        shipped+=("$destination${source##*/}")
      done
    done <<<"$copies"
  }

  # prove STAGE SCRIPT: runs the stage's (new) lines in the image root, then proves that every
  # library the stage's binaries load comes from a package the stage installs (named, a
  # dependency, or the base image), and that ldd in the image root finds them all.
  prove() {
    local stage=$1 stage_script=$2
    in_image bash -c "$stage_script" >"$work/$stage-install.log" 2>&1 ||
      { cat "$work/$stage-install.log"; fail "the $stage stage's RUN lines failed"; }
    # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
    in_image dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' |
      awk '$1 == "ii" { print $2 }' | sort >"$work/image-packages"
    # The packages the stage names, from its apt-get install words (for the report: the assertion
    # is what is installed, the named packages and whatever they depend on).
    local named
    named=$(stage_tool "$dockerfile" "$stage" | grep -o 'apt-get install[^&;|]*' |
      tr -s ' ' '\n' | grep -v -e '^-' -e '^apt-get$' -e '^install$' -e '^$' | sort -u)
    [ -n "$named" ] || fail "the $stage stage installs no package with apt-get install"
    copy_binaries "$stage"

    # Every library the binaries load, as the build root resolves them, and the package behind
    # each. dpkg knows a file by the path its package ships, which on a merged-/usr root may
    # differ from the one ldd prints (/lib/... against /usr/lib/...), or may be a symlink's target.
    local libs=() table
    mapfile -t libs < <(for source in "${built[@]}"; do in_root ldd "$source"; done |
      awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
    ((${#libs[@]})) || fail "ldd found no libraries in ${built[*]}"
    # shellcheck disable=SC2016 # expanded inside the root
    table=$(in_root bash -c '
      for lib; do
        pkg=
        for path in "$lib" "/usr$lib" "${lib#/usr}" "$(readlink -f "$lib")"; do
          pkg=$(dpkg -S "$path" 2>/dev/null | sed -n "s/^\([^:, ]*\)[^ ]*: .*/\1/p" | head -n 1)
          [ -n "$pkg" ] && break
        done
        echo "$lib ${pkg:-?}"
      done' resolve "${libs[@]}")
    # One line per package: what it provides and where the image gets it.
    local missing=() pkg where provides
    echo "-- $stage image: the libraries ${built[*]##*/} load, by package, and where it gets each:"
    while read -r pkg; do
      provides=$(awk -v p="$pkg" '$2 == p { sub(/.*\//, "", $1); print $1 }' <<<"$table" |
        awk '{ n++; if (n <= 3) s = s (n > 1 ? " " : "") $0 } END { print s (n > 3 ? " +" (n - 3) : "") }')
      if [ "$pkg" = "?" ]; then
        where="MISSING (no package owns it)"
        missing+=("$provides")
      elif grep -qxF -- "$pkg" <<<"$named"; then
        where="named by the $stage stage"
      elif grep -qxF -- "$pkg" "$work/base-packages"; then
        where="in the base image"
      elif grep -qxF -- "$pkg" "$work/image-packages"; then
        where="a dependency of a named package"
      else
        where="MISSING from the image"
        missing+=("$pkg")
      fi
      printf '   %-26s %-32s %s\n' "$pkg" "$where" "$provides"
    done < <(awk '{ print $2 }' <<<"$table" | sort -u)
    local unused
    unused=$(comm -23 <(printf '%s\n' "$named") <(awk '{ print $2 }' <<<"$table" | sort -u) |
      grep -vx ca-certificates || true)
    [ -z "$unused" ] || echo "-- named by the $stage stage but no library of its binaries: $unused"
    ((${#missing[@]} == 0)) ||
      fail "add to the $stage stage's apt-get install line: ${missing[*]} (or, for a library no" \
        "package owns, install it through scripts/install-deps.sh)"

    # The stronger half: the image root itself must resolve every library.
    local binary out
    for binary in "${shipped[@]}"; do
      out=$(in_image ldd "$binary") || fail "ldd $binary failed in the image root: $out"
      ! grep -q 'not found' <<<"$out" ||
        { echo "$out"; fail "$binary: libraries not found in the $stage image root"; }
    done
    echo "-- ldd in the $stage image root: every library of ${shipped[*]} found"
  }
  prove server "$server_script"
  prove sandbox "$extra_script"

  local line words
  # Start both as a pod would: the image's USER and ENV, the root read-only (a private bind, so
  # nothing mounted on it reaches the image root), a tmpfs on /tmp (the emptyDir), the secrets
  # on a read-only mount. The binaries load with BIND_NOW, so a start also proves every symbol.
  local description user entrypoint env_words=()
  description=$(stage_tool --describe "$dockerfile" server)
  user=$(sed -n 's/^USER //p' <<<"$description" | tail -n 1)
  entrypoint=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)"\]$/\1/p' <<<"$description" | tail -n 1)
  [[ -n "$user" && -n "$entrypoint" ]] || fail "the server stage needs a USER and an ENTRYPOINT"
  while IFS= read -r line; do
    read -r -a words <<<"${line#ENV }"
    env_words+=("${words[@]}")
  done < <(grep '^ENV ' <<<"$description" || true)
  mkdir -p "$view"
  mount_in_root --bind "$image" "$view"
  mount --make-private "$view"
  mount -o remount,bind,ro "$view"
  mount_kernel_fs "$view"
  mount_in_root -t tmpfs -o mode=1777,nosuid,nodev tmp "$view/tmp"
  # The harness must really be read-only, or the start below proves nothing: /var/tmp is
  # world-writable in the image.
  if chroot --userspec="$user" "$view" /usr/bin/touch /var/tmp/probe 2>/dev/null; then
    fail "the image root is writable under the check; it would prove nothing"
  fi

  local secrets="$work/secrets" redis_port=16400 sim_port=18481 grpc_port=15052 \
    callback_port=18081 admin_port=19091
  mkdir -p "$rootfs/root/image-check"
  in_root openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=flikpay-image-check -addext subjectAltName=IP:127.0.0.1 \
    -keyout /root/image-check/key.pem -out /root/image-check/cert.pem 2>/dev/null
  mkdir -p "$secrets"
  cp "$rootfs/root/image-check/key.pem" "$rootfs/root/image-check/cert.pem" "$secrets/"
  printf '{"callers": {"image-check": {"rpcs": ["GetStatus"]}}}\n' >"$secrets/policy.json"
  chmod 0755 "$secrets"
  chmod 0644 "$secrets"/*
  mount_in_root --bind "$secrets" "$view/mnt"
  mount -o remount,bind,ro "$view/mnt"

  # Each background start is an exec, so $! is the process itself, not a subshell around it.
  (exec chroot "$rootfs" "${root_env[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 \
    --save "" --appendonly no >"$work/redis.log" 2>&1) &
  local redis_pid=$!
  run_in_image() {  # only in the background: it replaces the subshell
    exec chroot --userspec="$user" "$view" /usr/bin/env -i \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${env_words[@]}" "$@"
  }
  # The Helm chart's sandbox mode: the same image, the command overridden.
  run_in_image /usr/local/bin/bankart-sim --listen="127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
  local sim_pid=$!
  run_in_image \
    FLIKPAY_GRPC_ADDR="127.0.0.1:$grpc_port" FLIKPAY_CALLBACK_ADDR="127.0.0.1:$callback_port" \
    FLIKPAY_ADMIN_ADDR="127.0.0.1:$admin_port" FLIKPAY_REDIS_URL="redis://127.0.0.1:$redis_port/0" \
    FLIKPAY_GATEWAY_URL="http://127.0.0.1:$sim_port/api/v3" FLIKPAY_GATEWAY_IS_STANDIN=true \
    FLIKPAY_API_USER=flikpay-sim FLIKPAY_API_PASSWORD=flikpay-sim-password \
    FLIKPAY_IN_PERSON_API_KEY=sim-in-person-key FLIKPAY_IN_PERSON_SHARED_SECRET=sim-in-person-secret \
    FLIKPAY_GRPC_TLS_CERT=/mnt/cert.pem FLIKPAY_GRPC_TLS_KEY=/mnt/key.pem \
    FLIKPAY_GRPC_CLIENT_CA=/mnt/cert.pem FLIKPAY_CALLER_POLICY=/mnt/policy.json \
    FLIKPAY_FINGERPRINT_KEY=image-check-fingerprint-key \
    "$entrypoint" >"$work/server.log" 2>&1 &
  local server_pid=$!
  local ready=0
  for _ in $(seq 100); do
    if grep -q 'listening' "$work/sim.log" && grep -q '^flikpay-server listening' "$work/server.log" &&
      in_root curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1; then
      ready=1
      break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null || ! kill -0 "$sim_pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  if [ "$ready" != 1 ]; then
    echo "-- flikpay-server:" && cat "$work/server.log"
    echo "-- bankart-sim:" && cat "$work/sim.log"
    fail "the binaries did not start (and get ready) on the read-only image root"
  fi
  sed -n 1p "$work/sim.log"
  grep '^flikpay-server listening' "$work/server.log"
  in_root curl -fsS "http://127.0.0.1:$sim_port/_sim/health" >/dev/null ||
    fail "bankart-sim's /_sim/health did not answer"
  echo "-- /readyz 200 (Redis reached), bankart-sim /_sim/health answered"
  # The gRPC port serves the certificate from its private copy under $TMPDIR.
  local tls_dirs handshake=0
  tls_dirs=$(find "$view/tmp" -maxdepth 1 -name 'flikpay-tls-*' -user "${user%%:*}" | wc -l)
  [ "$tls_dirs" = 1 ] || fail "expected one flikpay-tls-* directory of uid ${user%%:*} in /tmp"
  for _ in $(seq 25); do
    if in_root openssl s_client -connect "127.0.0.1:$grpc_port" -alpn h2 </dev/null 2>/dev/null |
      grep -q 'CN *= *flikpay-image-check'; then
      handshake=1
      break
    fi
    sleep 0.2
  done
  [ "$handshake" = 1 ] || fail "the gRPC port did not present the mounted certificate over TLS"
  echo "-- TLS on the gRPC port with the certificate copied to \$TMPDIR ($(ls "$view/tmp"))"

  kill -TERM "$server_pid" "$sim_pid"
  local status=0
  wait "$server_pid" || status=$?
  [ "$status" = 0 ] || { cat "$work/server.log"; fail "flikpay-server exited $status on TERM"; }
  wait "$sim_pid" || true
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  [ -z "$(ls -A "$view/tmp")" ] || fail "flikpay-server left $(ls "$view/tmp") in /tmp on exit"
  echo "-- image packages: $(comm -13 "$work/base-packages" "$work/image-packages" | wc -l) over the base:"
  comm -13 "$work/base-packages" "$work/image-packages" | xargs | fmt -w 96 | sed "s/^/   /"
  echo "-- image check: $((SECONDS - started)) s"
}
image_check
if [ "${FRESH_ONLY:-}" = image ]; then
  step "passed: the Docker build stage and the image check (FRESH_ONLY=image: test and run commands skipped)"
  exit 0
fi

step "README test command: scripts/test.sh (release pass)"
copy_checkout /home/dev/flikpay
in_root bash -c 'cd /home/dev/flikpay && FLIKPAY_TEST_SANITIZERS=0 bash scripts/test.sh'

step "README run command: scripts/run.sh, then the grpcurl lines it prints"
ports="REDIS_PORT=16399 SIM_PORT=18480 GRPC_PORT=15051 CALLBACK_PORT=18080 ADMIN_PORT=19090"
run_log="$rootfs/home/dev/run.out"
in_root bash -c "cd /home/dev/flikpay && $ports exec bash scripts/run.sh" >"$run_log" 2>&1 &
run_pid=$!
for _ in $(seq 600); do
  grep -q '^Ctrl-C stops everything' "$run_log" && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$run_log"; echo "fresh-check: run.sh exited" >&2; exit 1; }
  sleep 0.5
done
grep -q '^Ctrl-C stops everything' "$run_log" || { cat "$run_log"; exit 1; }
# Split the printed walk-through at its "# N." comments into one script per step.
awk -v dir="$rootfs/home/dev" '
  /^  # [0-9]\./ { n = substr($2, 1, 1); next }
  /^Ctrl-C/ { n = 0 }
  n { print > (dir "/step" n ".sh") }
' "$run_log"
for n in 1 2 3 4; do
  [ -s "$rootfs/home/dev/step$n.sh" ] || { cat "$run_log"; echo "fresh-check: no step $n" >&2; exit 1; }
  sed -n 1p "$rootfs/home/dev/step$n.sh"
done
in_root timeout 60 bash /home/dev/step1.sh >"$rootfs/home/dev/stream.out" 2>&1 &
stream_pid=$!
sleep 1
in_root bash /home/dev/step2.sh | tee "$rootfs/home/dev/create.out"
expect TRANSACTION_STATUS_PENDING "$rootfs/home/dev/create.out" "CreateRtp answered PENDING"
settled=0
for _ in $(seq 60); do
  if in_root bash /home/dev/step3.sh | grep -q TRANSACTION_STATUS_SUCCESS; then
    settled=1
    break
  fi
  sleep 0.5
done
[ "$settled" = 1 ] || { echo "fresh-check: the payment did not reach SUCCESS" >&2; exit 1; }
in_root bash /home/dev/step4.sh | tee "$rootfs/home/dev/refund.out"
expect '"amount_minor": "500"' "$rootfs/home/dev/refund.out" "Refund of 500 accepted"
sleep 1
kill "$stream_pid" 2>/dev/null || true
wait "$stream_pid" 2>/dev/null || true
echo "-- the stream printed:"
grep -E '"status"|cursor' "$rootfs/home/dev/stream.out" || true
expect TRANSACTION_STATUS_PENDING "$rootfs/home/dev/stream.out" "the stream pushed PENDING"
expect TRANSACTION_STATUS_SUCCESS "$rootfs/home/dev/stream.out" "the stream pushed SUCCESS"
# TERM, not INT: a background job of a non-interactive shell starts with SIGINT ignored.
kill -TERM "$run_pid" 2>/dev/null || true
wait "$run_pid" 2>/dev/null || true

step "passed: install script, Docker build stage, test command and run command on a bare root"
