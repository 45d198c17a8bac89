#ifndef FLIKPAY_SERVER_METRICS_H_
#define FLIKPAY_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace flikpay::server {

// The service's counters, exposed in Prometheus' text format on the admin port. (Debian bookworm
// has no prometheus-cpp package; the exposition format for plain counters is a few lines.)
struct Metrics {
  std::atomic<int64_t> callbacks_accepted{0};
  std::atomic<int64_t> callbacks_rejected{0};    // bad signature, stale or malformed
  std::atomic<int64_t> callbacks_unmatched{0};   // verified, but for an unknown transaction
  std::atomic<int64_t> callbacks_duplicate{0};   // changed nothing
  std::atomic<int64_t> callbacks_replayed{0};    // the same signed bytes again: no effect
  std::atomic<int64_t> callbacks_mismatched{0};  // verified, but not about their transaction
  std::atomic<int64_t> portal_refunds{0};        // refunds made in Bankart's portal, recorded
  std::atomic<int64_t> status_anomalies{0};      // contradicting final states
  std::atomic<int64_t> status_changes{0};
  std::atomic<int64_t> gateway_unknown_outcomes{0};
  std::atomic<int64_t> store_unavailable{0};
  std::atomic<int64_t> streams_open{0};
  std::atomic<int64_t> streams_started{0};  // subscriptions the hub began feeding
  std::atomic<int64_t> streams_overflowed{0};
  std::atomic<int64_t> reconciler_checks{0};
  std::atomic<int64_t> status_queries_deferred{0};  // refused by the quota share of their class
  std::atomic<int64_t> reconciler_resolved{0};
  std::atomic<int64_t> reconciler_backlog{0};
  std::atomic<int64_t> reconciler_lag_ms{0};
  std::atomic<int64_t> auth_refusals{0};        // gRPC calls with no valid identity
  std::atomic<int64_t> fair_share_refusals{0};  // a caller over its concurrency or rate
  std::atomic<int64_t> executor_refusals{0};    // an executor queue full
  std::atomic<int64_t> config_reload_failures{0};
  // The callback listener's, read from it when /metrics is asked for.
  std::atomic<int64_t> callback_connections_open{0};
  std::atomic<int64_t> callback_connections_refused{
      0};  // closed at accept: the cap was reached  // policy or token file changed but unreadable

  std::string Render() const;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_METRICS_H_
