#include "server/http_listeners.h"

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/address.h"
#include "server/metrics.h"
#include "server/payment_service.h"

namespace flikpay::server {

HttpListener::HttpListener() : server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(16); };
  server_->set_payload_max_length(256 * 1024);
  // Idle keep-alive connections hold a worker; keep them short so shutdown is prompt.
  server_->set_keep_alive_timeout(2);
  server_->set_read_timeout(10);
}

HttpListener::~HttpListener() { Stop(); }

absl::Status HttpListener::Start(const std::string& address) {
  absl::StatusOr<core::HostPort> parsed = core::ParseHostPort(address);
  if (!parsed.ok()) return parsed.status();
  port_ = parsed->port == 0
              ? server_->bind_to_any_port(parsed->host)
              : (server_->bind_to_port(parsed->host, parsed->port) ? parsed->port : -1);
  if (port_ <= 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the listen loop runs.
  while (!server_->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

void HttpListener::Stop() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

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
  listener.server().Post("/callbacks/bankart", [&service](const httplib::Request& request,
                                                          httplib::Response& response) {
    gateway::InboundCallback callback;
    callback.method = request.method;
    callback.request_uri = request.target;  // as on the request line: it is signed
    callback.body = request.body;
    for (const auto& [name, value] : request.headers) {
      callback.headers[absl::AsciiStrToLower(name)] = value;
    }
    const absl::Status handled = service.HandleCallback(callback);
    response.status = CallbackHttpStatus(handled);
    response.set_content(handled.ok() ? "OK" : std::string(handled.message()), "text/plain");
  });
}

void InstallAdminRoutes(HttpListener& listener, Metrics& metrics, std::function<bool()> serving,
                        std::function<bool()> ready) {
  listener.server().Get("/healthz", [serving](const httplib::Request&, httplib::Response& r) {
    const bool ok = serving();
    r.status = ok ? 200 : 503;
    r.set_content(ok ? "ok" : "draining", "text/plain");
  });
  listener.server().Get("/readyz", [serving, ready](const httplib::Request&, httplib::Response& r) {
    const bool ok = serving() && ready();
    r.status = ok ? 200 : 503;
    r.set_content(ok ? "ready" : "not ready", "text/plain");
  });
  listener.server().Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& r) {
    r.set_content(metrics.Render(), "text/plain; version=0.0.4");
  });
}

}  // namespace flikpay::server
