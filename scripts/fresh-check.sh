#!/usr/bin/env bash
# Proves the README's two commands on a fresh machine. Packages installed by hand stay on a
# developer's machine and on CI's, so a green CI alone can hide a missing install step; this
# builds a bare Debian bookworm root with mmdebstrap, copies the working tree in (tracked files and
# untracked ones git does not ignore, plus .git), and inside it, with chroot and nothing from the
# host but the network:
#   1. runs the Dockerfile's build stage (its ENV and RUN lines, in /src as Docker would);
#   2. runs the README's test command, scripts/test.sh (the release pass only: the sanitizer pass
#      doubles the time and checks the code, not the install; the host's test run has it);
#   3. runs the README's run command, scripts/run.sh, and executes the grpcurl lines it prints,
#      checking that the payment they take reaches SUCCESS and is refunded.
# Needs root (CI runs as root). FRESH_KEEP=1 keeps the root for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check: needs root (mmdebstrap --mode=root, mount, chroot)" >&2
  exit 1
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

work=$(mktemp -d /var/tmp/flikpay-fresh.XXXXXX)
rootfs="$work/root"
mounts=()
unmount_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  mounts=()
}
cleanup() {
  # Stop whatever the run command left in the root before its mounts go.
  if [ -d "$rootfs/proc" ]; then
    for pid_dir in /proc/[0-9]*; do
      [ "$(readlink "$pid_dir/root" 2>/dev/null)" = "$rootfs" ] && kill -9 "${pid_dir#/proc/}" 2>/dev/null
    done
  fi
  unmount_all
  if [ "${FRESH_KEEP:-0}" = 1 ]; then
    echo "fresh-check: root kept at $rootfs"
  elif grep -q " $work" /proc/mounts; then
    echo "fresh-check: $work still has mounts; not removing it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step() { printf '\n== fresh-check: %s (%ds)\n' "$*" "$SECONDS"; }

# The same Debian archive the host reaches. The Valid-Until check is off as on the host, whose
# mirror serves a dated snapshot; it is written into the root's apt configuration too.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources="deb http://deb.debian.org/debian bookworm main"
step "mmdebstrap: a minimal bookworm root"
mmdebstrap --mode=root --variant=minbase --quiet \
  --aptopt='Acquire::Check-Valid-Until "false"' bookworm "$rootfs" "$sources"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
# The machine's trust anchors belong to the machine like its network (this workplace's egress
# proxy presents its own CA): one file per certificate, so the root's own ca-certificates package,
# when install-deps.sh installs it, builds them into its bundle.
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
mount_in_root -t proc proc "$rootfs/proc"
mount_in_root -t sysfs -o ro sysfs "$rootfs/sys"
mount_in_root -t tmpfs -o mode=755,nosuid devtmp "$rootfs/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<<"$node"
  mknod -m 666 "$rootfs/dev/$name" c "$major" "$minor"
done
mkdir -p "$rootfs/dev/pts" "$rootfs/dev/shm"
mount_in_root -t devpts -o newinstance,ptmxmode=0666 devpts "$rootfs/dev/pts"
ln -s pts/ptmx "$rootfs/dev/ptmx"
mount_in_root -t tmpfs -o mode=1777 shm "$rootfs/dev/shm"
ln -s /proc/self/fd "$rootfs/dev/fd"

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
  grep -q -- "$1" "$2" || { echo "fresh-check: expected: $3 (no '$1' in ${2#$rootfs})" >&2; exit 1; }
}

# Inside the root: a login-like environment with nothing of the host's variables but CI.
in_root() {
  chroot "$rootfs" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
    PATH=/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$@"
}

step "Dockerfile build stage, as Docker would run it"
copy_checkout /src
script=$(bash scripts/dockerfile-build-stage.sh Dockerfile)
printf '%s\n' "$script"
in_root bash -c "$script"

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
