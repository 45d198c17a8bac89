// What the bench tools that drive flikpay-server share: making pending payments to call back,
// signing Bankart's callback for one, holding StreamStatus streams open, spreading streams over
// connections, and reading a figure from the server's /metrics.
#ifndef FLIKPAY_BENCH_LOAD_H_
#define FLIKPAY_BENCH_LOAD_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "flikpay/v1/payment_service.grpc.pb.h"

namespace flikpay::bench {

// The value of `series` (a name without labels) in the /metrics of the admin port on 127.0.0.1;
// -1 when it cannot be read.
int64_t ScrapeMetric(int admin_port, absl::string_view series);

// Out-of-Band requests to pay, one per id, `threads` calls at a time through `address`; each
// should answer PENDING (a stand-in whose payer never answers). `failed` counts the others and
// `first_error` tells the first.
std::vector<v1::Transaction> CreatePendingRtps(const std::string& address,
                                               const std::vector<std::string>& ids, int threads,
                                               int* failed, std::string* first_error);

// The HTTP request Bankart sends when the payer confirms `transaction` (Out-of-Band connector),
// signed now with `secret`.
std::string SignedSuccessCallback(const v1::Transaction& transaction, const std::string& secret);

// One connection (a channel of its own) per `per_connection` streams to `address`.
class Connections {
 public:
  Connections(std::string address, int per_connection, std::string salt);
  // The stub for the n-th stream opened through these connections.
  v1::PaymentService::Stub& For(int n);
  size_t size() const { return stubs_.size(); }

 private:
  const std::string address_;
  const int per_connection_;
  const std::string salt_;
  std::vector<std::unique_ptr<v1::PaymentService::Stub>> stubs_;
};

// A StreamStatus call that only reads until it ends: counts what it receives (`events`, when
// given) and its end (`ended`).
class ReadingStream final : public grpc::ClientReadReactor<v1::StatusEvent> {
 public:
  ReadingStream(v1::PaymentService::Stub& stub, v1::StreamStatusRequest request,
                std::atomic<int>& ended, std::atomic<int>* events = nullptr);
  void Cancel() { context_.TryCancel(); }
  bool done() const { return done_; }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  grpc::ClientContext context_;
  const v1::StreamStatusRequest request_;
  v1::StatusEvent event_;
  std::atomic<int>& ended_;
  std::atomic<int>* const events_;
  std::atomic<bool> done_{false};
};

}  // namespace flikpay::bench

#endif  // FLIKPAY_BENCH_LOAD_H_
