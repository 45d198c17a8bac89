// The service's metrics, kept by prometheus-cpp and exposed in Prometheus' text format on the admin
// port (/metrics). Names and labels are listed, with the alerts worth having, in the README's
// "Operations" section; label values come from closed sets, never from callers or Bankart, so a
// flood of odd input cannot grow the number of series.
#ifndef FLIKPAY_SERVER_METRICS_H_
#define FLIKPAY_SERVER_METRICS_H_

#include <array>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/caller_policy.h"
#include "flikpay/v1/payment_service.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace flikpay::server {

// How a callback that reached the handler ended; each callback counts under exactly one.
enum class CallbackResult {
  kAccepted,            // stored, and it changed the transaction's status
  kDuplicate,           // stored, changed nothing (a repeat or a late report)
  kBadSignature,        // unsigned, or the signature does not match
  kStale,               // its Date is missing, unreadable or outside the tolerance
  kMalformed,           // signed correctly but not a callback flikpay can read
  kReplay,              // the same signed bytes again: acknowledged, no effect
  kMismatch,            // verified, but another connector/type/amount/currency/uuid than its own
  kUnknownTransaction,  // verified, for a transaction flikpay did not start (kept for reading)
  kRetryLater,          // Redis could not be reached: answered 503, Bankart retries
};
inline constexpr int kCallbackResults = 9;
// "accepted", "bad_signature", ...: the label value, also in the callback's access-log line.
const char* CallbackResultName(CallbackResult result);

// The gateway call a request to Bankart made, and how it ended.
enum class GatewayEndpoint { kDebit, kRefund, kPayout, kStatus };
inline constexpr int kGatewayEndpoints = 4;
enum class GatewayOutcome {
  kAccepted,  // Bankart took it (or, for a status query, answered)
  kDeclined,  // Bankart refused it; nothing moved
  kUnknown,   // timeout, 5xx, unreadable answer: the outcome is not known
  kError,     // refused before reaching Bankart, or a status query that failed
};
inline constexpr int kGatewayOutcomes = 4;

class Metrics {
  // First: every series below is made in it.
  std::shared_ptr<prometheus::Registry> registry_;

 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Every series, in Prometheus' text exposition format 0.0.4.
  std::string Render() const;

  // One finished unary RPC, or one StreamStatus at its end.
  void CountRpc(core::Rpc rpc, absl::StatusCode code, absl::Duration latency);
  void CountGatewayCall(GatewayEndpoint endpoint, GatewayOutcome outcome, absl::Duration latency);
  void CountCallback(CallbackResult result);
  double Callbacks(CallbackResult result) const;
  // `from_claim`: the first answer for a transaction flikpay just created (its claim is stored as
  // UNKNOWN until Bankart answers), counted as from="new" so that from="unknown" means an outcome
  // that really was unknown.
  void CountTransition(v1::TransactionStatus from, v1::TransactionStatus to, bool from_claim);
  // Why a StreamStatus ended, from the status it ended with.
  void CountStreamEnd(absl::StatusCode code);
  // One round trip to Redis (a command or a pipeline) named by its first command.
  void CountRedisRoundTrip(absl::string_view command, absl::Duration latency,
                           const absl::Status& status);

  prometheus::Counter& portal_refunds;
  prometheus::Counter& status_anomalies;
  prometheus::Counter& status_changes;
  prometheus::Counter& store_unavailable;
  prometheus::Gauge& streams_open;
  prometheus::Counter& streams_started;
  prometheus::Counter& reconciler_checks;
  prometheus::Counter& reconciler_resolved;
  // GetStatus reads (without refresh) answered from the record cache, and those that went to Redis.
  prometheus::Counter& record_cache_hits;
  prometheus::Counter& record_cache_misses;
  prometheus::Gauge& reconciler_backlog;
  prometheus::Gauge& reconciler_lag_seconds;
  prometheus::Counter& status_queries_deferred;
  // Bankart's status queries still free in the current window, for every replica together, as this
  // replica last saw it.
  prometheus::Gauge& status_query_quota_left;
  prometheus::Counter& auth_refusals;
  prometheus::Counter& fair_share_refusals;
  prometheus::Counter& executor_refusals;
  prometheus::Counter& config_reload_failures;
  // The callback listener's, read from it when /metrics is asked for.
  prometheus::Gauge& callback_connections_open;
  // A counter fed from the listener's own total (SetCallbackConnectionsRefused).
  prometheus::Counter& callback_connections_refused;
  void SetCallbackConnectionsRefused(int64_t total);

 private:
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Family<prometheus::Counter>& gateway_calls_;
  prometheus::Family<prometheus::Histogram>& gateway_seconds_;
  prometheus::Family<prometheus::Counter>& callbacks_;
  prometheus::Family<prometheus::Counter>& transitions_;
  prometheus::Family<prometheus::Counter>& stream_ends_;
  prometheus::Family<prometheus::Histogram>& redis_seconds_;
  prometheus::Family<prometheus::Counter>& redis_errors_;

  // The hot series, made once: Family::Add takes a lock and hashes labels.
  std::array<std::array<prometheus::Counter*, 17>, core::kRpcCount> rpc_counts_{};
  std::array<prometheus::Histogram*, core::kRpcCount> rpc_latencies_{};
  std::array<std::array<prometheus::Counter*, kGatewayOutcomes>, kGatewayEndpoints>
      gateway_counts_{};
  std::array<prometheus::Histogram*, kGatewayEndpoints> gateway_latencies_{};
  std::array<prometheus::Counter*, kCallbackResults> callback_counts_{};
  // Redis round trips by first command as the store names it: each name's series made once (the
  // store's names are a closed set), then found under a reader lock, not by Family::Add's labels.
  prometheus::Histogram& RedisLatency(absl::string_view command);
  absl::Mutex redis_mutex_;
  absl::flat_hash_map<std::string, prometheus::Histogram*> redis_latencies_
      ABSL_GUARDED_BY(redis_mutex_);
  prometheus::Counter* redis_connection_errors_ = nullptr;
  prometheus::Counter* redis_reply_errors_ = nullptr;
  absl::Mutex refused_mutex_;  // one /metrics request at a time moves the refused-connections count
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_METRICS_H_
