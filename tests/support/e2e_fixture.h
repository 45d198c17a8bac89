#ifndef FLIKPAY_TESTS_SUPPORT_E2E_FIXTURE_H_
#define FLIKPAY_TESTS_SUPPORT_E2E_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/state_machine.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/process.h"

namespace flikpay::testing {

using Json = nlohmann::json;

struct Replica {
  std::unique_ptr<ChildProcess> process;
  int grpc_port = 0;
  int callback_port = 0;
  int admin_port = 0;
  std::unique_ptr<v1::PaymentService::Stub> stub;
};

// flikpay end to end: a private redis-server, bankart-sim and two flikpay-server replicas on free
// loopback ports, driven through gRPC like a calling service would. Each test binary derives one
// fixture from this; its processes are started once per test suite, so each process running tests
// (every ctest entry runs one case) has its own, and `ctest -j` runs entries side by side. Tests
// that share the processes in one run must not depend on each other: each uses its own merchant
// transaction ids and scopes the sim's faults to them.
class E2eTest : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  // Redis keeps its AOF in a private folder, so a restart on the same port (the fault suite's
  // outage) finds every write it acknowledged.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> StartRedis(std::string* line);
  // A flikpay-server on this suite's Redis and sim, with a fast reconciler; null (and a test
  // failure) if it does not start.
  static std::unique_ptr<Replica> StartReplica(std::vector<std::string> extra_flags = {});
  // The command line StartReplica runs (flikpay-server first), for a run of the server's own.
  static std::vector<std::string> ServerArgs(const std::vector<std::string>& extra_flags);

  static v1::PaymentService::Stub& A() { return *replicas_[0]->stub; }
  static v1::PaymentService::Stub& B() { return *replicas_[1]->stub; }

  static std::string NewId(absl::string_view prefix);
  // A fresh prefix for a test's ids, ending in '-' so that no other id NewId hands out (say counter
  // 12 next to counter 1) starts with it.
  static std::string NewPrefix(absl::string_view name);

  static Json SimControl(const std::string& method, const std::string& path, const Json& body = {});
  // POST /_sim/faults and /_sim/callback-faults; a refused fault fails the test rather than leaving
  // it to pass without its fault.
  static void AddApiFault(const Json& fault);
  static void AddCallbackFault(const Json& fault);
  // Debits the sim created for this merchant transaction id.
  static int SimDebitsFor(const std::string& id);

  static grpc::Status Create(v1::PaymentService::Stub& stub, const v1::CreateRtpRequest& request,
                             v1::Transaction* out, absl::Duration timeout = absl::Seconds(10));
  static v1::CreateRtpRequest Rtp(const std::string& alias, v1::RtpKind kind,
                                  int64_t amount = 1111);
  static grpc::Status Get(v1::PaymentService::Stub& stub, const std::string& id,
                          v1::Transaction* out);
  // Polls GetStatus until the status is final (callbacks come ~200 ms after a request).
  static v1::Transaction AwaitFinal(v1::PaymentService::Stub& stub, const std::string& id,
                                    absl::Duration timeout = absl::Seconds(10));
  static v1::Transaction AwaitFinalForFaults(v1::PaymentService::Stub& stub, const std::string& id);

  // How many subscriptions the replica has begun feeding (flikpay_streams_started_total). A
  // counter, not the open-streams gauge: a stream of an earlier test ending at the same moment
  // would cancel out the gauge's increase.
  static int StartedStreams(const Replica& replica);
  // The replica's gRPC health status for `service` ("" is the server), -1 if the call failed;
  // AwaitHealth polls until it is `status` (true) or `timeout` passes (false).
  static int Health(const Replica& replica, const std::string& service);
  static bool AwaitHealth(const Replica& replica, const std::string& service, int status,
                          absl::Duration timeout);
  // The status of GET `path` on the replica's admin port.
  static int AdminStatus(const Replica& replica, const std::string& path);
  // A counter or gauge from the replica's /metrics; -1 if it is not there.
  static int64_t Metric(const Replica& replica, const std::string& name);
  // Reads events from a StreamStatus call on `replica` until `count` arrived or the time is up
  // (then it fails the test, naming the subscription and how many of `count` arrived;
  // `expect_all` false for a reader that only drains what comes). `after_open` runs once the
  // replica feeds the subscription, so it sees every later change; a subscription the replica never
  // starts feeding fails the test too.
  static std::vector<v1::StatusEvent> ReadEvents(const Replica& replica,
                                                 const v1::StreamStatusRequest& request,
                                                 size_t count, absl::Duration timeout,
                                                 std::function<void()> after_open = nullptr,
                                                 bool expect_all = true);

  // Creates `debit` on replica A (its answer in `created`) and waits until Bankart's callback has
  // made it SUCCESS, a fatal failure otherwise: the start of every refund test.
  static void PaidDebit(const v1::CreateRtpRequest& debit, v1::Transaction* created);
  // One request to pay per alias, with ids `prefix` followed by 1, 2, ...
  static std::vector<v1::CreateRtpRequest> RtpsFor(const std::string& prefix,
                                                   const std::vector<std::string>& aliases,
                                                   v1::RtpKind kind);
  // Creates `requests` on `create_on`, `pause` apart, while a StreamStatus on `watch_on` follows
  // their ids, and returns what that stream delivered within 8 s: up to one event more than
  // `expected`, so a duplicate event would show.
  static std::vector<v1::StatusEvent> CreateWhileWatching(
      const std::vector<v1::CreateRtpRequest>& requests, v1::PaymentService::Stub& create_on,
      const Replica& watch_on, size_t expected, absl::Duration pause = absl::ZeroDuration());

  struct CreateTally {
    int ok = 0, aborted = 0, other = 0;
  };
  // Sends the same CreateRtp `threads` x `calls` times at once, alternating replicas.
  static CreateTally CreateConcurrently(const v1::CreateRtpRequest& request, int threads,
                                        int calls);
  // A payout to the sandbox alias that always succeeds.
  static grpc::Status SuccessfulPayout(v1::PaymentService::Stub& stub, const std::string& id,
                                       int64_t amount_minor, const std::string& description = "");
  // Posts a callback to a replica's callback port, signed with `secret`; returns the HTTP status.
  // `date_at` is the Date it carries (and signs): the same one twice sends the same bytes.
  static int PostCallback(int port, const std::string& body, const std::string& secret,
                          const std::string& query = "connector=in_person",
                          absl::Time date_at = absl::Now());

  static bool IsFinalStatusOf(const v1::StatusEvent& event) {
    return core::IsFinal(event.transaction().status());
  }

  // Every debit scenario of seed 000 (both alias forms, every kind) through gRPC on replica A,
  // each ending in its status by Bankart's callback (source CALLBACK) as read on replica B.
  static void ExpectEverySeedScenario();

  // A refund of `amount_minor` of `original` under a fresh id (returned in `*id`), sent to `stub`.
  static grpc::Status RefundOn(v1::PaymentService::Stub& stub, const std::string& original,
                               int64_t amount_minor, v1::Transaction* out,
                               std::string* id = nullptr);

  struct RefundTally {
    int accepted = 0, refused = 0, other = 0;
  };
  // Sends `threads` x `calls` refunds of `amount_minor` each of `original` at once, alternating
  // replicas; refused = FAILED_PRECONDITION (the cap).
  static RefundTally RefundConcurrently(const std::string& original, int64_t amount_minor,
                                        int threads, int calls);
  // What bankart-sim counts as refunded or pending of the debit with this uuid ("9.80"); a debit
  // it does not know fails the test (and gives "").
  static std::string RefundedAtBankart(const std::string& gateway_uuid);

  // Flags every replica of the suite gets after the defaults (so they win); a suite sets them in
  // its own SetUpTestSuite before calling this one's.
  static inline std::vector<std::string> replica_flags_;
  // The same for the stand-in.
  static inline std::vector<std::string> sim_flags_;
  // How A() and B() connect (default plaintext, for replicas run with --insecure_dev, which every
  // suite gets unless its flags configure caller identity).
  static inline std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;
  static inline std::unique_ptr<ChildProcess> redis_;
  static inline std::unique_ptr<ChildProcess> sim_;
  static inline int redis_port_ = 0;
  static inline std::string redis_dir_;
  static inline int sim_port_ = 0;
  static inline std::unique_ptr<Replica> replicas_[2];
};

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_E2E_FIXTURE_H_
