#include "server/http_listeners.h"

#include <string>

#include "server/log.h"
#include "server/metrics.h"
#include "server/payment_service.h"

namespace flikpay::server {

int CallbackHttpStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    default:
      return 503;
  }
}

namespace {

bool Unverified(CallbackResult result) {
  return result == CallbackResult::kBadSignature || result == CallbackResult::kStale ||
         result == CallbackResult::kMalformed;
}

// The callback's access-log line. Lines for callbacks that failed verification are sampled: anyone
// on the internet can send those, and the metrics count every one.
void LogCallback(const ListenerRequest& request, const CallbackOutcome& outcome, int http_status,
                 const absl::Status& handled, absl::Duration latency) {
  static LogSampler* const unverified = new LogSampler(10);
  LogFields fields;
  if (Unverified(outcome.result)) {
    int64_t suppressed = 0;
    if (!LogEnabled(LogLevel::kInfo) || !unverified->Allow(absl::Now(), &suppressed)) return;
    if (suppressed > 0) fields["suppressed_before"] = suppressed;
  }
  fields["peer"] = request.peer;
  // Path and query (the connector is named there); the listener has bounded its length.
  fields["target"] = request.target.substr(0, 256);
  fields["http_status"] = http_status;
  fields["result"] = CallbackResultName(outcome.result);
  if (!outcome.merchant_transaction_id.empty()) {
    fields["merchant_transaction_id"] = outcome.merchant_transaction_id;
  }
  if (!outcome.status.empty()) fields["status"] = outcome.status;
  // Behind the ingress `peer` is the proxy. The sender's address as the proxy saw it, untrusted
  // (anyone can send the header; only the ingress's own entry is worth believing).
  if (auto forwarded = request.headers.find("x-forwarded-for");
      forwarded != request.headers.end()) {
    fields["forwarded_for"] = forwarded->second.substr(0, 256);
  }
  // Why it was refused, for the operator; the sender learns only that it was.
  if (!handled.ok()) fields["reason"] = std::string(handled.message());
  fields["latency_us"] = absl::ToInt64Microseconds(latency);
  WriteLog(LogLevel::kInfo, "callback", fields);
}

}  // namespace

void InstallCallbackRoutes(HttpListener& listener, PaymentService& service) {
  listener.Route("POST", "/callbacks/bankart", [&service](const ListenerRequest& request) {
    const absl::Time started = absl::Now();
    gateway::InboundCallback callback;
    callback.method = request.method;
    callback.request_uri = request.target;  // as on the request line: it is signed
    callback.body = request.body;
    callback.headers = request.headers;
    // An ingress's X-Request-ID (nginx sets one) ties this line to the proxy's; unsigned, so only
    // kept when it is a harmless token.
    auto offered = request.headers.find("x-request-id");
    const LogContext log_context{
        RequestIdFrom(offered == request.headers.end() ? "" : offered->second), "", "callback", ""};
    const ScopedLogContext scope(log_context);
    CallbackOutcome outcome;
    const absl::Status handled = service.HandleCallback(callback, &outcome);
    const int status = CallbackHttpStatus(handled);
    LogCallback(request, outcome, status, handled, absl::Now() - started);
    switch (status) {
      case 200:
        return ListenerResponse{200, "text/plain", "OK"};
      case 401:
        return ListenerResponse{401, "text/plain", "signature not accepted\n"};
      case 400:
        return ListenerResponse{400, "text/plain", "callback not understood\n"};
      default:
        return ListenerResponse{status, "text/plain", "try again later\n"};
    }
  });
}

void InstallAdminRoutes(HttpListener& listener, Metrics& metrics, std::function<bool()> serving,
                        std::function<bool()> ready, const HttpListener& callbacks) {
  listener.Route("GET", "/healthz", [serving](const ListenerRequest&) {
    const bool ok = serving();
    return ListenerResponse{ok ? 200 : 503, "text/plain", ok ? "ok" : "draining"};
  });
  listener.Route("GET", "/readyz", [serving, ready](const ListenerRequest&) {
    const bool ok = serving() && ready();
    return ListenerResponse{ok ? 200 : 503, "text/plain", ok ? "ready" : "not ready"};
  });
  listener.Route("GET", "/metrics", [&metrics, &callbacks](const ListenerRequest&) {
    metrics.callback_connections_open.Set(static_cast<double>(callbacks.open_connections()));
    metrics.SetCallbackConnectionsRefused(callbacks.refused_connections());
    return ListenerResponse{200, "text/plain; version=0.0.4", metrics.Render()};
  });
}

}  // namespace flikpay::server
