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

void InstallCallbackRoutes(HttpListener& listener, PaymentService& service) {
  listener.Route("POST", "/callbacks/bankart", [&service](const ListenerRequest& request) {
    gateway::InboundCallback callback;
    callback.method = request.method;
    callback.request_uri = request.target;  // as on the request line: it is signed
    callback.body = request.body;
    callback.headers = request.headers;
    const absl::Status handled = service.HandleCallback(callback);
    const int status = CallbackHttpStatus(handled);
    if (!handled.ok()) {
      // Debug only: anyone on the internet can make these, and Bankart's own are rare.
      Log(LogLevel::kDebug, "callback answered %d: %s", status, handled.message());
    }
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
    metrics.callback_connections_open = callbacks.open_connections();
    metrics.callback_connections_refused = callbacks.refused_connections();
    return ListenerResponse{200, "text/plain; version=0.0.4", metrics.Render()};
  });
}

}  // namespace flikpay::server
