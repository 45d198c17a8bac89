#!/usr/bin/env bash
# Runs flikpay locally for real: installs what is missing, builds, starts a private Redis (data
# and AOF under .run/redis), the local Bankart stand-in and flikpay-server, prints the grpcurl
# lines that take a payment through its life, and serves until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build

REDIS_PORT=${REDIS_PORT:-6399}
SIM_PORT=${SIM_PORT:-8480}
GRPC_PORT=${GRPC_PORT:-50051}
CALLBACK_PORT=${CALLBACK_PORT:-8080}
ADMIN_PORT=${ADMIN_PORT:-9090}
GRPCURL="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin/grpcurl"
mkdir -p .run/redis
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# A private Redis: its own port and folder, append-only file on. REDIS_APPENDFSYNC=always trades
# throughput for losing nothing on a Redis crash (README, "Failures and recovery").
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$root/.run/redis" \
  --appendonly yes --appendfsync "${REDIS_APPENDFSYNC:-everysec}" --save "" --daemonize no \
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

# flikpay-server, configured the way Kubernetes configures it: through FLIKPAY_* variables.
export FLIKPAY_GRPC_ADDR="127.0.0.1:$GRPC_PORT"
export FLIKPAY_CALLBACK_ADDR="127.0.0.1:$CALLBACK_PORT"
export FLIKPAY_ADMIN_ADDR="127.0.0.1:$ADMIN_PORT"
export FLIKPAY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export FLIKPAY_GATEWAY_URL="http://127.0.0.1:$SIM_PORT/api/v3" FLIKPAY_GATEWAY_IS_STANDIN=true
export FLIKPAY_PUBLIC_CALLBACK_URL="http://127.0.0.1:$CALLBACK_PORT/callbacks/bankart"
export FLIKPAY_API_USER=flikpay-sim FLIKPAY_API_PASSWORD=flikpay-sim-password
export FLIKPAY_ECOMMERCE_API_KEY=sim-ecommerce-key FLIKPAY_ECOMMERCE_SHARED_SECRET=sim-ecommerce-secret
export FLIKPAY_IN_PERSON_API_KEY=sim-in-person-key FLIKPAY_IN_PERSON_SHARED_SECRET=sim-in-person-secret
export FLIKPAY_OUT_OF_BAND_API_KEY=sim-out-of-band-key FLIKPAY_OUT_OF_BAND_SHARED_SECRET=sim-out-of-band-secret
export FLIKPAY_PAYOUT_API_KEY=sim-payout-key FLIKPAY_PAYOUT_SHARED_SECRET=sim-payout-secret
# A local run: plaintext gRPC, every call made as caller "dev" (the server says so loudly). A
# deployment identifies callers by certificate or token instead (README, "Callers").
export FLIKPAY_INSECURE_DEV=true
# A new deployment with no older replicas: change notices and the record cache at once (README,
# "Record cache", for the rollout an upgrade needs).
export FLIKPAY_CHANGE_NOTICES=true FLIKPAY_RECORD_CACHE_SIZE=100000
./build/server/flikpay-server >"$root/.run/flikpay-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q "flikpay-server listening" "$root/.run/flikpay-server.log" 2>/dev/null && break
  sleep 0.1
done

cat <<TXT
flikpay-server: gRPC 127.0.0.1:$GRPC_PORT, callbacks http://127.0.0.1:$CALLBACK_PORT/callbacks/bankart,
                admin http://127.0.0.1:$ADMIN_PORT/{healthz,readyz,metrics} (log: .run/flikpay-server.log)
Redis:          redis://127.0.0.1:$REDIS_PORT/0 (data: .run/redis, AOF everysec)
bankart-sim:    http://127.0.0.1:$SIM_PORT/api/v3 (log: .run/bankart-sim.log; journal: /_sim/journal)

Take a payment through its whole life (in another terminal):

  # 1. watch it (leave running)
  $GRPCURL -plaintext -d '{"merchant_transaction_ids":["order-1"],"send_current":true}' \\
      127.0.0.1:$GRPC_PORT flikpay.v1.PaymentService/StreamStatus
  # 2. ask the payer to pay 11.11 EUR (the sandbox payer confirms after 5 s)
  $GRPCURL -plaintext -d '{"merchant_transaction_id":"order-1","amount_minor":1111,
      "kind":"RTP_KIND_IN_PERSON","alias":"success.debit_success.refund@bankart.flik",
      "description":"Order 1"}' 127.0.0.1:$GRPC_PORT flikpay.v1.PaymentService/CreateRtp
  # 3. see it succeed
  $GRPCURL -plaintext -d '{"merchant_transaction_id":"order-1"}' \\
      127.0.0.1:$GRPC_PORT flikpay.v1.PaymentService/GetStatus
  # 4. refund part of it
  $GRPCURL -plaintext -d '{"merchant_transaction_id":"order-1-refund-1",
      "original_merchant_transaction_id":"order-1","amount_minor":500}' \\
      127.0.0.1:$GRPC_PORT flikpay.v1.PaymentService/Refund

Ctrl-C stops everything.
TXT
wait -n "${pids[@]}"
