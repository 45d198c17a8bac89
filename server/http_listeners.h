#ifndef FLIKPAY_SERVER_HTTP_LISTENERS_H_
#define FLIKPAY_SERVER_HTTP_LISTENERS_H_

#include <functional>

#include "absl/status/status.h"
#include "server/http_server.h"

namespace flikpay::server {

class PaymentService;
class Metrics;

// The HTTP answer to a callback for PaymentService::HandleCallback's status: 200 (body "OK"), 401,
// 400, or 503 for anything that should make Bankart retry.
int CallbackHttpStatus(const absl::Status& status);

// POST /callbacks/bankart: Bankart's signed callbacks. Public-facing; gRPC stays internal. The
// answer's body is "OK" or a fixed reason for its status: the service's own message may quote what
// the sender sent, and the sender may be anyone.
void InstallCallbackRoutes(HttpListener& listener, PaymentService& service);

// GET /healthz (alive and not draining), /readyz (Redis answers), /metrics (Prometheus text, with
// the callback listener's connection counts). Never exposed publicly; served by a listener of its
// own (AdminListenerOptions) so probes answer while the callback port is busy or attacked.
void InstallAdminRoutes(HttpListener& listener, Metrics& metrics, std::function<bool()> serving,
                        std::function<bool()> ready, const HttpListener& callbacks);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_HTTP_LISTENERS_H_
