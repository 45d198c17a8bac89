#ifndef FLIKPAY_SERVER_HTTP_LISTENERS_H_
#define FLIKPAY_SERVER_HTTP_LISTENERS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace httplib {
class Server;
}

namespace flikpay::server {

class PaymentService;
struct Metrics;

// An HTTP/1.1 server (cpp-httplib) on its own thread pool.
class HttpListener {
 public:
  HttpListener();
  ~HttpListener();
  httplib::Server& server() { return *server_; }
  // "host:port"; port 0 picks one (see port()).
  absl::Status Start(const std::string& address);
  int port() const { return port_; }
  void Stop();

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// The HTTP answer to a callback for PaymentService::HandleCallback's status: 200 (body "OK"), 401,
// 400, or 503 for anything that should make Bankart retry.
int CallbackHttpStatus(const absl::Status& status);

// POST /callbacks/bankart: Bankart's signed callbacks. Public-facing; gRPC stays internal.
void InstallCallbackRoutes(HttpListener& listener, PaymentService& service);

// GET /healthz (alive and not draining), /readyz (Redis answers), /metrics (Prometheus text). Never
// exposed publicly.
void InstallAdminRoutes(HttpListener& listener, Metrics& metrics, std::function<bool()> serving,
                        std::function<bool()> ready);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_HTTP_LISTENERS_H_
