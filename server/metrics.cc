#include "server/metrics.h"

#include <sstream>

#include "absl/strings/ascii.h"
#include "prometheus/text_serializer.h"

namespace flikpay::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Registry;

Counter& PlainCounter(Registry& registry, const std::string& name, const std::string& help) {
  return BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

Gauge& PlainGauge(Registry& registry, const std::string& name, const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

// From half a millisecond (a Redis read on loopback) to 30 s (the default deadline).
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return buckets;
}

// Redis answers in well under a millisecond when healthy; the long end catches a failover.
const Histogram::BucketBoundaries& RedisBuckets() {
  static const Histogram::BucketBoundaries buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                      0.005,  0.01,    0.025,  0.1,   1};
  return buckets;
}

}  // namespace

const char* CallbackResultName(CallbackResult result) {
  switch (result) {
    case CallbackResult::kAccepted:
      return "accepted";
    case CallbackResult::kDuplicate:
      return "duplicate";
    case CallbackResult::kBadSignature:
      return "bad_signature";
    case CallbackResult::kStale:
      return "stale";
    case CallbackResult::kMalformed:
      return "malformed";
    case CallbackResult::kReplay:
      return "replay";
    case CallbackResult::kMismatch:
      return "mismatch";
    case CallbackResult::kUnknownTransaction:
      return "unknown_transaction";
    case CallbackResult::kRetryLater:
      return "retry_later";
  }
  return "unknown";
}

namespace {

const char* EndpointName(GatewayEndpoint endpoint) {
  switch (endpoint) {
    case GatewayEndpoint::kDebit:
      return "debit";
    case GatewayEndpoint::kRefund:
      return "refund";
    case GatewayEndpoint::kPayout:
      return "payout";
    case GatewayEndpoint::kStatus:
      return "status";
  }
  return "unknown";
}

const char* OutcomeName(GatewayOutcome outcome) {
  switch (outcome) {
    case GatewayOutcome::kAccepted:
      return "accepted";
    case GatewayOutcome::kDeclined:
      return "declined";
    case GatewayOutcome::kUnknown:
      return "unknown";
    case GatewayOutcome::kError:
      return "error";
  }
  return "unknown";
}

// "TRANSACTION_STATUS_PENDING" -> "pending".
std::string StatusLabel(v1::TransactionStatus status) {
  std::string name = v1::TransactionStatus_Name(status);
  constexpr absl::string_view kPrefix = "TRANSACTION_STATUS_";
  if (absl::string_view(name).substr(0, kPrefix.size()) == kPrefix) name.erase(0, kPrefix.size());
  absl::AsciiStrToLower(&name);
  return name.empty() ? "unspecified" : name;
}

const char* StreamEndReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "finished";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    case absl::StatusCode::kDeadlineExceeded:
      return "deadline";
    case absl::StatusCode::kResourceExhausted:
      return "overflow_or_busy";
    case absl::StatusCode::kOutOfRange:
      return "cursor_expired";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kInvalidArgument:
      return "refused";
    default:
      return "error";
  }
}

std::string CodeLabel(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);  // "RESOURCE_EXHAUSTED", gRPC's spelling
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<Registry>()),
      portal_refunds(PlainCounter(
          *registry_, "flikpay_portal_refunds_total",
          "Refunds made in Bankart's portal, recorded against their debit from the callback.")),
      status_anomalies(PlainCounter(
          *registry_, "flikpay_status_anomalies_total",
          "Reports contradicting a final status (kept in the history, status unchanged).")),
      status_changes(
          PlainCounter(*registry_, "flikpay_status_changes_total", "Status changes stored.")),
      store_unavailable(PlainCounter(*registry_, "flikpay_store_unavailable_total",
                                     "Operations that failed because Redis was unreachable.")),
      streams_open(
          PlainGauge(*registry_, "flikpay_streams_open", "Open StreamStatus subscriptions.")),
      streams_started(PlainCounter(*registry_, "flikpay_streams_started_total",
                                   "StreamStatus subscriptions the hub began feeding.")),
      reconciler_checks(PlainCounter(*registry_, "flikpay_reconciler_checks_total",
                                     "Status queries the reconciler made.")),
      reconciler_resolved(
          PlainCounter(*registry_, "flikpay_reconciler_resolved_total",
                       "Status changes the reconciler found (lost callbacks, unknown outcomes).")),
      record_cache_hits(PlainCounter(*registry_, "flikpay_record_cache_hits_total",
                                     "GetStatus reads answered from the replica's record cache.")),
      record_cache_misses(PlainCounter(
          *registry_, "flikpay_record_cache_misses_total",
          "GetStatus reads that went to Redis (not cached, not final, or the cache off).")),
      reconciler_backlog(PlainGauge(*registry_, "flikpay_reconciler_backlog",
                                    "Transactions due for a status check.")),
      reconciler_lag_seconds(
          PlainGauge(*registry_, "flikpay_reconciler_lag_seconds",
                     "How long the oldest due transaction has waited for its check.")),
      status_queries_deferred(PlainCounter(
          *registry_, "flikpay_status_queries_deferred_total",
          "Status queries put off because their priority's share of Bankart's quota was spent.")),
      status_query_quota_left(PlainGauge(
          *registry_, "flikpay_status_query_quota_left",
          "Bankart status queries still free in the current window (all replicas), as last seen.")),
      auth_refusals(
          PlainCounter(*registry_, "flikpay_auth_refusals_total",
                       "gRPC calls refused UNAUTHENTICATED (no or unknown certificate or token).")),
      fair_share_refusals(
          PlainCounter(*registry_, "flikpay_fair_share_refusals_total",
                       "Calls refused because their caller was over its concurrency or rate.")),
      executor_refusals(
          PlainCounter(*registry_, "flikpay_executor_refusals_total",
                       "Calls refused because too many were already waiting for a thread.")),
      config_reload_failures(PlainCounter(
          *registry_, "flikpay_config_reload_failures_total",
          "Changed policy, token or TLS files that could not be used (the previous stay).")),
      callback_connections_open(PlainGauge(*registry_, "flikpay_callback_connections_open",
                                           "Connections open on the callback listener.")),
      callback_connections_refused(
          PlainCounter(*registry_, "flikpay_callback_connections_refused_total",
                       "Connections the callback listener closed at accept: its cap was reached.")),
      rpcs_(BuildCounter()
                .Name("flikpay_grpc_requests_total")
                .Help("gRPC calls finished, by method and status code.")
                .Register(*registry_)),
      rpc_seconds_(BuildHistogram()
                       .Name("flikpay_grpc_request_duration_seconds")
                       .Help("gRPC unary call latency from arrival to answer, by method.")
                       .Register(*registry_)),
      gateway_calls_(BuildCounter()
                         .Name("flikpay_gateway_requests_total")
                         .Help("Requests to Bankart, by endpoint and outcome.")
                         .Register(*registry_)),
      gateway_seconds_(BuildHistogram()
                           .Name("flikpay_gateway_request_duration_seconds")
                           .Help("Latency of requests to Bankart, by endpoint.")
                           .Register(*registry_)),
      callbacks_(BuildCounter()
                     .Name("flikpay_callbacks_total")
                     .Help("Callbacks that reached the handler, by how they ended.")
                     .Register(*registry_)),
      transitions_(BuildCounter()
                       .Name("flikpay_status_transitions_total")
                       .Help("Stored status changes, by the status left and the status entered.")
                       .Register(*registry_)),
      stream_ends_(BuildCounter()
                       .Name("flikpay_stream_ends_total")
                       .Help("StreamStatus calls ended, by reason.")
                       .Register(*registry_)),
      redis_seconds_(BuildHistogram()
                         .Name("flikpay_redis_round_trip_seconds")
                         .Help("Redis round trips (a command or a pipeline), by first command.")
                         .Register(*registry_)),
      redis_errors_(BuildCounter()
                        .Name("flikpay_redis_errors_total")
                        .Help("Redis round trips that failed: connection (unreachable, timed "
                              "out) or reply (an error answer).")
                        .Register(*registry_)) {
  for (int rpc = 0; rpc < core::kRpcCount; ++rpc) {
    const std::string method(core::RpcName(static_cast<core::Rpc>(rpc)));
    for (int code = 0; code < 17; ++code) {
      rpc_counts_[rpc][code] = &rpcs_.Add(
          {{"method", method}, {"code", CodeLabel(static_cast<absl::StatusCode>(code))}});
    }
    rpc_latencies_[rpc] = &rpc_seconds_.Add({{"method", method}}, LatencyBuckets());
  }
  for (int endpoint = 0; endpoint < kGatewayEndpoints; ++endpoint) {
    const char* name = EndpointName(static_cast<GatewayEndpoint>(endpoint));
    for (int outcome = 0; outcome < kGatewayOutcomes; ++outcome) {
      gateway_counts_[endpoint][outcome] = &gateway_calls_.Add(
          {{"endpoint", name}, {"outcome", OutcomeName(static_cast<GatewayOutcome>(outcome))}});
    }
    gateway_latencies_[endpoint] = &gateway_seconds_.Add({{"endpoint", name}}, LatencyBuckets());
  }
  for (int result = 0; result < kCallbackResults; ++result) {
    callback_counts_[result] =
        &callbacks_.Add({{"result", CallbackResultName(static_cast<CallbackResult>(result))}});
  }
  // Every series an alert may watch exists from the start, so rate() sees its first increase.
  for (absl::StatusCode code :
       {absl::StatusCode::kOk, absl::StatusCode::kCancelled, absl::StatusCode::kDeadlineExceeded,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kOutOfRange,
        absl::StatusCode::kUnavailable, absl::StatusCode::kPermissionDenied,
        absl::StatusCode::kInternal}) {
    stream_ends_.Add({{"reason", StreamEndReason(code)}});
  }
  redis_connection_errors_ = &redis_errors_.Add({{"kind", "connection"}});
  redis_reply_errors_ = &redis_errors_.Add({{"kind", "reply"}});
  const v1::TransactionStatus statuses[] = {
      v1::TRANSACTION_STATUS_UNKNOWN, v1::TRANSACTION_STATUS_PENDING,
      v1::TRANSACTION_STATUS_SUCCESS, v1::TRANSACTION_STATUS_CANCELLED,
      v1::TRANSACTION_STATUS_ERROR};
  for (v1::TransactionStatus to : statuses) {
    transitions_.Add({{"from", "new"}, {"to", StatusLabel(to)}});
    for (v1::TransactionStatus from :
         {v1::TRANSACTION_STATUS_UNKNOWN, v1::TRANSACTION_STATUS_PENDING}) {
      if (from != to) transitions_.Add({{"from", StatusLabel(from)}, {"to", StatusLabel(to)}});
    }
  }
}

void Metrics::SetCallbackConnectionsRefused(int64_t total) {
  absl::MutexLock lock(&refused_mutex_);
  const double grown = static_cast<double>(total) - callback_connections_refused.Value();
  if (grown > 0) callback_connections_refused.Increment(grown);
}

std::string Metrics::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

void Metrics::CountRpc(core::Rpc rpc, absl::StatusCode code, absl::Duration latency) {
  const int index = static_cast<int>(rpc);
  int code_index = static_cast<int>(code);
  if (code_index < 0 || code_index >= 17) code_index = static_cast<int>(absl::StatusCode::kUnknown);
  rpc_counts_[index][code_index]->Increment();
  // A stream's lifetime is not a latency; only its end is counted.
  if (rpc != core::Rpc::kStreamStatus) {
    rpc_latencies_[index]->Observe(absl::ToDoubleSeconds(latency));
  }
}

void Metrics::CountGatewayCall(GatewayEndpoint endpoint, GatewayOutcome outcome,
                               absl::Duration latency) {
  gateway_counts_[static_cast<int>(endpoint)][static_cast<int>(outcome)]->Increment();
  gateway_latencies_[static_cast<int>(endpoint)]->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::CountCallback(CallbackResult result) {
  callback_counts_[static_cast<int>(result)]->Increment();
}

double Metrics::Callbacks(CallbackResult result) const {
  return callback_counts_[static_cast<int>(result)]->Value();
}

void Metrics::CountTransition(v1::TransactionStatus from, v1::TransactionStatus to,
                              bool from_claim) {
  transitions_.Add({{"from", from_claim ? "new" : StatusLabel(from)}, {"to", StatusLabel(to)}})
      .Increment();
}

void Metrics::CountStreamEnd(absl::StatusCode code) {
  stream_ends_.Add({{"reason", StreamEndReason(code)}}).Increment();
}

void Metrics::CountRedisRoundTrip(absl::string_view command, absl::Duration latency,
                                  const absl::Status& status) {
  RedisLatency(command).Observe(absl::ToDoubleSeconds(latency));
  if (!status.ok()) {
    (absl::IsUnavailable(status) ? redis_connection_errors_ : redis_reply_errors_)->Increment();
  }
}

prometheus::Histogram& Metrics::RedisLatency(absl::string_view command) {
  {
    absl::ReaderMutexLock lock(&redis_mutex_);
    auto found = redis_latencies_.find(command);
    if (found != redis_latencies_.end()) return *found->second;
  }
  std::string name(command);
  absl::AsciiStrToUpper(&name);
  prometheus::Histogram& series = redis_seconds_.Add({{"command", name}}, RedisBuckets());
  absl::MutexLock lock(&redis_mutex_);
  redis_latencies_.emplace(std::string(command), &series);
  return series;
}

}  // namespace flikpay::server
