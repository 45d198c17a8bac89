#!/usr/bin/env bash
# Runs flikpay locally for real: installs what is missing, builds, starts a private Redis (data
# and AOF under .run/redis) and the local Bankart stand-in, and serves until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build

REDIS_PORT=${REDIS_PORT:-6399}
SIM_PORT=${SIM_PORT:-8480}
mkdir -p .run/redis
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# A private Redis: its own port and folder, append-only file on (fsync every second).
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$root/.run/redis" \
  --appendonly yes --appendfsync everysec --save "" --daemonize no \
  --logfile "$root/.run/redis/redis.log" &
pids+=($!)

# Scenario answers after 5 s, as the real sandbox answers within two minutes.
./build/gateway/bankart-sim --listen="127.0.0.1:$SIM_PORT" --scenario_delay=5s \
  >"$root/.run/bankart-sim.log" 2>&1 &
pids+=($!)

for _ in $(seq 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 &&
    curl -fs "http://127.0.0.1:$SIM_PORT/_sim/health" >/dev/null && break
  sleep 0.1
done

cat <<TXT
Redis:        redis://127.0.0.1:$REDIS_PORT/0   (data: .run/redis, AOF everysec)
bankart-sim:  http://127.0.0.1:$SIM_PORT/api/v3 (log: .run/bankart-sim.log)
  API user flikpay-sim / password flikpay-sim-password; connectors:
    ecommerce   sim-ecommerce-key   / sim-ecommerce-secret
    in_person   sim-in-person-key   / sim-in-person-secret
    out_of_band sim-out-of-band-key / sim-out-of-band-secret
    payout      sim-payout-key      / sim-payout-secret
  What it received and sent: curl http://127.0.0.1:$SIM_PORT/_sim/journal
Ctrl-C stops everything.
TXT
wait
