#include "bench/load.h"

#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/money.h"
#include "gateway/signing.h"
#include "nlohmann/json.hpp"
#include "tests/support/raw_http.h"

namespace flikpay::bench {

int64_t ScrapeMetric(int admin_port, absl::string_view series) {
  absl::StatusOr<std::unique_ptr<testing::RawConnection>> connection =
      testing::RawConnection::Open(admin_port);
  if (!connection.ok()) return -1;
  if (!(*connection)->Send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
    return -1;
  }
  absl::StatusOr<testing::RawResponse> response = (*connection)->Read(absl::Seconds(5));
  if (!response.ok()) return -1;
  const std::string prefix = absl::StrCat(series, " ");
  for (absl::string_view line : absl::StrSplit(response->body, '\n')) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    double value = 0;
    if (absl::SimpleAtod(line, &value)) return static_cast<int64_t>(value);
  }
  return -1;
}

std::vector<v1::Transaction> CreatePendingRtps(const std::string& address,
                                               const std::vector<std::string>& ids, int threads,
                                               int* failed, std::string* first_error) {
  auto stub =
      v1::PaymentService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const int count = static_cast<int>(ids.size());
  std::vector<v1::Transaction> created(count);
  std::atomic<int> next{0}, failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        v1::CreateRtpRequest request;
        request.set_merchant_transaction_id(ids[i]);
        request.set_amount_minor(1000 + i % 1000);
        request.set_kind(v1::RTP_KIND_OUT_OF_BAND);
        request.set_alias("0038670999000");
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        const grpc::Status status = stub->CreateRtp(&context, request, &created[i]);
        if (!status.ok() || created[i].status() != v1::TRANSACTION_STATUS_PENDING) {
          if (failures++ == 0 && first_error != nullptr) {
            *first_error = absl::StrCat(status.error_code(), " ", status.error_message(), " ",
                                        v1::TransactionStatus_Name(created[i].status()));
          }
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  if (failed != nullptr) *failed = failures.load();
  return created;
}

std::string SignedSuccessCallback(const v1::Transaction& transaction, const std::string& secret) {
  const std::string body = nlohmann::json{
      {"result", "OK"},
      {"uuid", transaction.gateway_uuid()},
      {"merchantTransactionId", transaction.merchant_transaction_id()},
      {"purchaseId", transaction.purchase_id()},
      {"transactionType", "DEBIT"},
      {"paymentMethod", "FlikPayments"},
      {"amount", gateway::FormatAmount(transaction.amount_minor())},
      {"currency", "EUR"}}.dump();
  const std::string target = "/callbacks/bankart?connector=out_of_band";
  const std::string content_type = "application/json; charset=utf-8";
  const std::string date = gateway::FormatHttpDate(absl::Now());
  const std::string signature = gateway::Sign(secret, {"POST", body, content_type, date, target});
  return testing::PostRequest(target, body,
                              absl::StrCat("Content-Type: ", content_type, "\r\nDate: ", date,
                                           "\r\nX-Signature: ", signature, "\r\n"));
}

Connections::Connections(std::string address, int per_connection, std::string salt)
    : address_(std::move(address)), per_connection_(per_connection), salt_(std::move(salt)) {}

v1::PaymentService::Stub& Connections::For(int n) {
  const size_t channel = static_cast<size_t>(n / per_connection_);
  while (stubs_.size() <= channel) {
    grpc::ChannelArguments args;
    // Distinct arguments: a channel (and connection) of its own.
    args.SetString("flikpay.bench.connection", absl::StrCat(salt_, "-", stubs_.size()));
    stubs_.push_back(v1::PaymentService::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args)));
  }
  return *stubs_[channel];
}

ReadingStream::ReadingStream(v1::PaymentService::Stub& stub, v1::StreamStatusRequest request,
                             std::atomic<int>& ended, std::atomic<int>* events)
    : request_(std::move(request)), ended_(ended), events_(events) {
  stub.async()->StreamStatus(&context_, &request_, this);
  StartRead(&event_);
  StartCall();
}

void ReadingStream::OnReadDone(bool ok) {
  if (!ok) return;
  if (events_ != nullptr) ++*events_;
  StartRead(&event_);
}

void ReadingStream::OnDone(const grpc::Status&) {
  done_ = true;
  ++ended_;
}

}  // namespace flikpay::bench
