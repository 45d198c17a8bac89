#include "server/metrics.h"

#include "absl/strings/str_cat.h"

namespace flikpay::server {
namespace {

void Append(std::string& out, const char* name, const char* type, const char* help,
            const std::atomic<int64_t>& value) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                  value.load(), "\n");
}

}  // namespace

std::string Metrics::Render() const {
  std::string out;
  Append(out, "flikpay_callbacks_accepted_total", "counter",
         "Verified gateway callbacks that were stored.", callbacks_accepted);
  Append(out, "flikpay_callbacks_rejected_total", "counter",
         "Callbacks refused for a bad or stale signature or a malformed body.", callbacks_rejected);
  Append(out, "flikpay_callbacks_unmatched_total", "counter",
         "Verified callbacks for transactions flikpay does not know.", callbacks_unmatched);
  Append(out, "flikpay_callbacks_duplicate_total", "counter",
         "Callbacks that changed nothing (duplicates and late reports).", callbacks_duplicate);
  Append(out, "flikpay_callbacks_replayed_total", "counter",
         "Verified callbacks whose signed bytes were already handled (acknowledged, no effect).",
         callbacks_replayed);
  Append(out, "flikpay_callbacks_mismatched_total", "counter",
         "Verified callbacks refused: another connector, type, amount, currency or uuid than "
         "their transaction's.",
         callbacks_mismatched);
  Append(out, "flikpay_portal_refunds_total", "counter",
         "Refunds made in Bankart's portal, recorded against their debit from the callback.",
         portal_refunds);
  Append(out, "flikpay_status_anomalies_total", "counter",
         "Reports contradicting a final status (kept in the history, status unchanged).",
         status_anomalies);
  Append(out, "flikpay_status_changes_total", "counter", "Status changes stored.", status_changes);
  Append(out, "flikpay_gateway_unknown_outcomes_total", "counter",
         "Gateway calls whose outcome was unknown (timeout, 5xx).", gateway_unknown_outcomes);
  Append(out, "flikpay_store_unavailable_total", "counter",
         "Operations that failed because Redis was unreachable.", store_unavailable);
  Append(out, "flikpay_streams_open", "gauge", "Open StreamStatus subscriptions.", streams_open);
  Append(out, "flikpay_streams_started_total", "counter",
         "StreamStatus subscriptions the hub began feeding.", streams_started);
  Append(out, "flikpay_streams_overflowed_total", "counter",
         "Subscriptions ended because the subscriber fell too far behind.", streams_overflowed);
  Append(out, "flikpay_status_queries_deferred_total", "counter",
         "Status queries put off because their priority's share of Bankart's quota was spent.",
         status_queries_deferred);
  Append(out, "flikpay_reconciler_checks_total", "counter", "Status queries the reconciler made.",
         reconciler_checks);
  Append(out, "flikpay_reconciler_resolved_total", "counter",
         "Status changes the reconciler found (lost callbacks, unknown outcomes).",
         reconciler_resolved);
  Append(out, "flikpay_reconciler_backlog", "gauge", "Transactions due for a status check.",
         reconciler_backlog);
  Append(out, "flikpay_reconciler_lag_milliseconds", "gauge",
         "How long the oldest due transaction has waited for its check.", reconciler_lag_ms);
  Append(out, "flikpay_auth_refusals_total", "counter",
         "gRPC calls refused UNAUTHENTICATED (no or unknown certificate or token).", auth_refusals);
  Append(out, "flikpay_fair_share_refusals_total", "counter",
         "Calls refused because their caller was over its concurrency or rate.",
         fair_share_refusals);
  Append(out, "flikpay_executor_refusals_total", "counter",
         "Calls refused because too many were already waiting for a thread.", executor_refusals);
  Append(out, "flikpay_config_reload_failures_total", "counter",
         "Changed policy or token files that could not be used (the previous version stays).",
         config_reload_failures);
  Append(out, "flikpay_callback_connections_open", "gauge",
         "Connections open on the callback listener.", callback_connections_open);
  Append(out, "flikpay_callback_connections_refused_total", "counter",
         "Connections the callback listener closed at accept because its cap was reached.",
         callback_connections_refused);
  return out;
}

}  // namespace flikpay::server
