#!/usr/bin/env bash
# The callback benchmark (issue 12): builds Release with the benchmarks, starts a private Redis
# (AOF everysec, as production), bankart-sim with its own callbacks held back (answers after an
# hour) and one flikpay-server, then sends signed callbacks about distinct PENDING transactions:
# as fast as they are taken on keep-alive connections and on a new connection each, and at
# 1,000/s. Prints one table; everything on loopback. BENCH_COUNT sets the callbacks per run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
count=${BENCH_COUNT:-20000}

bash scripts/install-deps.sh >/dev/null
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLIKPAY_BENCH=ON >/dev/null
cmake --build build-bench --target flikpay-server bankart-sim callback-bench >/dev/null

work=$(mktemp -d /tmp/flikpay-bench-XXXXXX)  # mktemp's template
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(port) SIM_PORT=$(port) GRPC_PORT=$(port) CALLBACK_PORT=$(port) ADMIN_PORT=$(port)

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
exit $status
