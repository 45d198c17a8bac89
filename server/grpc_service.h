#ifndef FLIKPAY_SERVER_GRPC_SERVICE_H_
#define FLIKPAY_SERVER_GRPC_SERVICE_H_

#include <atomic>

#include "flikpay/v1/payment_service.grpc.pb.h"
#include "server/event_hub.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "server/payment_service.h"
#include "store/store.h"

namespace flikpay::server {

struct GrpcServiceConfig {
  // Used when a caller sets no deadline.
  absl::Duration default_deadline = absl::Seconds(30);
  // Events a StreamStatus subscriber may have waiting before it is ended (RESOURCE_EXHAUSTED).
  size_t max_buffered_events = 1024;
};

// PaymentService on gRPC's callback API. Reactions never block: the work of each call runs on an
// executor (gateway calls on their own, so a slow gateway cannot starve GetStatus), which finishes
// the reactor.
class GrpcPaymentService final : public v1::PaymentService::CallbackService {
 public:
  GrpcPaymentService(PaymentService& service, store::Store& store, EventHub& hub, Metrics& metrics,
                     GrpcServiceConfig config);
  ~GrpcPaymentService() override;

  // New calls are refused with UNAVAILABLE from now on.
  void StartDraining() { draining_ = true; }

  grpc::ServerUnaryReactor* CreateRtp(grpc::CallbackServerContext* context,
                                      const v1::CreateRtpRequest* request,
                                      v1::Transaction* response) override;
  grpc::ServerUnaryReactor* Refund(grpc::CallbackServerContext* context,
                                   const v1::RefundRequest* request,
                                   v1::Transaction* response) override;
  grpc::ServerUnaryReactor* Payout(grpc::CallbackServerContext* context,
                                   const v1::PayoutRequest* request,
                                   v1::Transaction* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::Transaction* response) override;
  grpc::ServerWriteReactor<v1::StatusEvent>* StreamStatus(
      grpc::CallbackServerContext* context, const v1::StreamStatusRequest* request) override;

 private:
  template <typename Work>
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, Executor& executor,
                                     v1::Transaction* response, Work work);

  PaymentService& service_;
  store::Store& store_;
  EventHub& hub_;
  Metrics& metrics_;
  GrpcServiceConfig config_;
  std::atomic<bool> draining_{false};
  Executor gateway_executor_{"gateway", 32};
  Executor store_executor_{"store", 8};
};

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_GRPC_SERVICE_H_
