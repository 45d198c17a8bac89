#!/usr/bin/env bash
# The callback benchmark (issue 12): builds Release with the benchmarks, starts a private Redis
# (AOF everysec, as production), bankart-sim with its own callbacks held back (answers after an
# hour) and one flikpay-server, then sends signed callbacks about distinct PENDING transactions:
# as fast as they are taken on keep-alive connections and on a new connection each, and at
# 1,000/s. Prints one table; everything on loopback. BENCH_COUNT sets the callbacks per run.
# Then the cost of WAIT (issue 14): RedisStore's Begin+Apply from 1, 4 and 16 threads against a
# single redis-server and against a primary with two replicas and WAIT 1 (bench/wait_bench.cc),
# WAIT_BENCH_SECONDS (default 3) per cell, about 25 s in all. BENCH_ONLY=wait runs only that.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
count=${BENCH_COUNT:-20000}
only=${BENCH_ONLY:-all}

bash scripts/install-deps.sh >/dev/null
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLIKPAY_BENCH=ON >/dev/null
if [ "$only" = wait ]; then
  cmake --build build-bench --target wait-bench >/dev/null
else
  cmake --build build-bench --target flikpay-server bankart-sim callback-bench wait-bench >/dev/null
fi

work=$(mktemp -d /tmp/flikpay-bench-XXXXXX)  # mktemp's template
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(port) SIM_PORT=$(port) GRPC_PORT=$(port) CALLBACK_PORT=$(port) ADMIN_PORT=$(port)

# WAIT's cost: a single redis-server, and a primary with two replicas; AOF everysec on all.
wait_bench() {
  local single primary replica1 replica2
  single=$(port) primary=$(port) replica1=$(port) replica2=$(port)
  redis_node() { # port, name, extra args
    local p=$1 name=$2
    shift 2
    mkdir -p "$work/$name"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$work/$name" --appendonly yes \
      --appendfsync everysec --save "" --logfile "$work/$name.log" "$@" &
    pids+=($!)
  }
  redis_node "$single" single
  redis_node "$primary" primary
  redis_node "$replica1" replica1 --replicaof 127.0.0.1 "$primary" --repl-diskless-sync-delay 0
  redis_node "$replica2" replica2 --replicaof 127.0.0.1 "$primary" --repl-diskless-sync-delay 0
  for _ in $(seq 100); do # both replicas linked, synced and done rewriting their AOF
    local ready=0 r
    for r in "$replica1" "$replica2"; do
      redis-cli -p "$r" info replication 2>/dev/null | grep -q 'master_link_status:up' &&
        redis-cli -p "$r" info persistence 2>/dev/null | grep -q 'aof_rewrite_in_progress:0' &&
        ready=$((ready + 1))
    done
    [ "$ready" = 2 ] && break
    sleep 0.1
  done
  echo
  echo "WAIT for a replica: Begin+Apply on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
  ./build-bench/bench/wait-bench --single="$single" --primary="$primary" \
    --seconds="${WAIT_BENCH_SECONDS:-3}"
}
if [ "$only" = wait ]; then
  wait_bench
  exit
fi

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work" --appendonly yes \
  --appendfsync everysec --save "" --logfile "$work/redis.log" &
pids+=($!)
./build-bench/gateway/bankart-sim --listen="127.0.0.1:$SIM_PORT" --scenario_delay=1h \
  >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:$SIM_PORT/_sim/health" >/dev/null && break
  sleep 0.1
done
FLIKPAY_INSECURE_DEV=true FLIKPAY_LOG_LEVEL=error \
  FLIKPAY_GRPC_ADDR="127.0.0.1:$GRPC_PORT" FLIKPAY_CALLBACK_ADDR="127.0.0.1:$CALLBACK_PORT" \
  FLIKPAY_ADMIN_ADDR="127.0.0.1:$ADMIN_PORT" FLIKPAY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  FLIKPAY_GATEWAY_URL="http://127.0.0.1:$SIM_PORT/api/v3" FLIKPAY_GATEWAY_IS_STANDIN=true \
  FLIKPAY_API_USER=flikpay-sim FLIKPAY_API_PASSWORD=flikpay-sim-password \
  FLIKPAY_OUT_OF_BAND_API_KEY=sim-out-of-band-key \
  FLIKPAY_OUT_OF_BAND_SHARED_SECRET=sim-out-of-band-secret \
  FLIKPAY_PENDING_CHECK_AFTER=1h \
  ./build-bench/server/flikpay-server >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q "flikpay-server listening" "$work/server.log" 2>/dev/null && break
  sleep 0.1
done

bench() { ./build-bench/bench/callback-bench --grpc="127.0.0.1:$GRPC_PORT" \
  --callback_port="$CALLBACK_PORT" "$@"; }
echo "callbacks on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
echo "| mode           |     rate | callbacks | accepted | refused | accepted/s | p50 ms  | p90 ms  | p99 ms  | max ms   |"
echo "|---|---|---|---|---|---|---|---|---|---|"
status=0
bench --count="$count" --connections=8 --keep_alive=true || status=1
bench --count="$count" --connections=8 --keep_alive=false || status=1
bench --count=$((count / 4)) --connections=4 --keep_alive=true --rate=1000 || status=1
wait_bench || status=1
exit $status
