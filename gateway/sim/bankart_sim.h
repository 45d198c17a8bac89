#ifndef FLIKPAY_GATEWAY_SIM_BANKART_SIM_H_
#define FLIKPAY_GATEWAY_SIM_BANKART_SIM_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/sim/sim_protocol.h"
#include "gateway/sim/timed_executor.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace flikpay::sim {

// The stand-in names its own connectors and types rather than borrowing flikpay's (see
// sim_protocol.h for why it shares no code with the adapter).
enum class ConnectorKind { kEcommerce, kInPerson, kOutOfBand, kPayout };
// "ecommerce", "in_person", "out_of_band", "payout", as --connector and the journal write them.
absl::string_view ConnectorKindName(ConnectorKind kind);
std::optional<ConnectorKind> ParseConnectorKind(absl::string_view name);

struct SimConnector {
  ConnectorKind kind = ConnectorKind::kEcommerce;
  std::string api_key;
  std::string shared_secret;
};

struct SimOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port, see BankartSim::port()
  // Base of the redirect URLs handed out; defaults to http://host:port.
  std::string public_url;
  std::string api_user;
  std::string api_password;  // accepted as is or as SHA-1 x10
  std::vector<SimConnector> connectors;
  // Multiplies every delay: scenario callbacks, RTP validity, callback retry schedule and the
  // status rate-limit window. 0.01 turns the 5-minute E-commerce validity into 3 s.
  double time_scale = 1.0;
  // When a payer "answers" a request to pay (the real sandbox: up to two minutes).
  absl::Duration scenario_delay = absl::Seconds(5);
  // Requests whose Date is further from now than this are refused (1004).
  absl::Duration request_date_tolerance = absl::Minutes(5);
  // How long a callback receiver may take to answer: 10 s first, 30 s on retries.
  absl::Duration callback_timeout = absl::Seconds(10);
  absl::Duration callback_retry_timeout = absl::Seconds(30);
  // How callbacks write their Date header. Senders differ (sim_protocol.h, "HTTP dates"), so a
  // receiver is tested against each.
  DateForm callback_date_format = DateForm::kGmt;
  // Seed 000: when an E-commerce request to pay expires unanswered, the gateway asks again and
  // waits "at least 45 seconds" (scaled like every delay) before it gives up.
  absl::Duration ecommerce_requery_window = absl::Seconds(45);
};

// A local stand-in for Bankart's Flik sandbox: the JSON API v3 (debit, refund, payout, status), the
// seed's test aliases and their scenarios, the redirect page, signed callbacks with the gateway's
// retry schedule, and a control API (/_sim/...) for fault injection and inspection.
class BankartSim {
 public:
  explicit BankartSim(SimOptions options);
  ~BankartSim();
  BankartSim(const BankartSim&) = delete;
  BankartSim& operator=(const BankartSim&) = delete;

  // Binds the listening socket and serves on a background thread.
  absl::Status Start();
  int port() const { return port_; }
  void Stop();
  // Blocks until Stop() (from a signal handler thread, say).
  void Wait();

  enum class Scenario {
    kSuccess,
    kCancel,
    kError,
    kSuccessRefundSuccess,
    kSuccessRefundError,
    kPayoutSuccess,
    kPayoutError,
    kUnknownAlias,
    kAwaitingAlias,   // redirect flow without an alias: the payer has not typed one yet
    kAwaitingChoice,  // redirect flow: the payer has not picked yet
  };

  enum class TransactionType { kDebit, kRefund, kPayout };

  struct Error {
    int code = 0;
    std::string message;
    std::string adapter_code;
    std::string adapter_message;
  };

 private:
  struct Transaction {
    std::string uuid;
    std::string purchase_id;
    std::string merchant_transaction_id;
    std::string adapter_reference_id;
    const SimConnector* connector = nullptr;
    TransactionType type = TransactionType::kDebit;
    std::string status;  // PENDING, REDIRECT, SUCCESS, CANCELLED, ERROR
    int64_t amount_minor = 0;
    std::string currency;
    std::string alias;
    std::string callback_url;
    std::string success_url;
    std::string error_url;
    std::string cancel_url;
    std::string merchant_metadata;
    std::string reference_uuid;
    int64_t refund_reserved_minor = 0;  // debits: pending + successful refunds
    Scenario scenario = Scenario::kSuccess;
    // The payer is on the gateway's pages (alias entry, scenarios, waiting screen) and is sent
    // back to the merchant's URL once the payment is decided.
    bool redirect = false;
    std::string redirect_token;
    absl::Time expires_at;
    // E-commerce only: after expires_at, the window in which the gateway asks again (seed 000).
    std::optional<absl::Time> requery_until;
    std::vector<Error> errors;
  };

  // Which transactions a fault applies to: every one (both fields empty), the one with this
  // merchantTransactionId, or those whose id starts with `prefix`. Tests that share one sim scope
  // their faults to their own ids, so a fault is never taken by another test's transaction.
  struct FaultScope {
    std::string merchant_transaction_id;
    std::string prefix;
    bool Matches(absl::string_view id) const;
  };

  struct ApiFault {
    std::string kind;       // timeout_before, timeout_after, error_before,
                            // error_after, slow, rate_limit
    std::string operation;  // debit, refund, payout, status; empty: any
    FaultScope scope;
    int remaining = 0;
    absl::Duration delay;
    int http_status = 0;
  };

  struct Delivery {
    std::string uuid;
    std::string merchant_transaction_id;
    std::string url;
    std::string body;
    std::string shared_secret;
    int copy = 1;
  };

  struct CallbackFault {
    std::string kind;  // drop, duplicate, delay, reorder
    FaultScope scope;
    int remaining = 0;
    int copies = 2;
    absl::Duration delay;
    // reorder: the callbacks held so far. Each reorder fault keeps its own batch, so two scopes
    // reordering at once do not complete each other's.
    std::vector<Delivery> held;
  };

  void RegisterRoutes();
  void HandleTransaction(const httplib::Request& request, httplib::Response& response);
  void HandleStatus(const httplib::Request& request, httplib::Response& response);
  void HandleRedirectPage(const httplib::Request& request, httplib::Response& response);
  void HandleRedirectForm(const httplib::Request& request, httplib::Response& response);
  void HandleControl(const httplib::Request& request, httplib::Response& response);

  // Authenticates an API request; on failure fills `response` and returns null.
  const SimConnector* Authenticate(const httplib::Request& request, const std::string& api_key,
                                   httplib::Response& response);
  // Takes the first fault that matches the operation and the transaction's merchantTransactionId,
  // if any.
  std::optional<ApiFault> TakeFault(const std::string& operation,
                                    const std::string& merchant_transaction_id);

  nlohmann::json Debit(const SimConnector& connector, const nlohmann::json& body, int& http_status,
                       std::string& created_uuid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  nlohmann::json Refund(const SimConnector& connector, const nlohmann::json& body, int& http_status,
                        std::string& created_uuid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  nlohmann::json Payout(const SimConnector& connector, const nlohmann::json& body, int& http_status,
                        std::string& created_uuid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  Transaction& NewTransaction(const SimConnector& connector, TransactionType type,
                              const nlohmann::json& body, int64_t amount_minor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  nlohmann::json AcceptedAnswer(const Transaction& transaction) const;
  std::string RedirectUrl(const Transaction& transaction) const;
  std::string PageHtml(const Transaction& transaction, absl::string_view notice) const;

  // Moves a transaction to its final status (once) and sends its callback.
  void Finish(const std::string& uuid, Scenario outcome) ABSL_LOCKS_EXCLUDED(mutex_);
  void FinishLocked(Transaction& transaction, Scenario outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ScheduleScenario(const Transaction& transaction) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void ScheduleExpiry(const std::string& uuid, absl::Time when)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Expire(const std::string& uuid) ABSL_LOCKS_EXCLUDED(mutex_);
  // The payer has typed `alias` on the alias-entry page, or a test chose for them.
  void TakeAlias(Transaction& transaction, const std::string& alias)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  nlohmann::json CallbackBody(const Transaction& transaction) const;
  void Dispatch(Delivery delivery) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Deliver(Delivery delivery, int attempt) ABSL_LOCKS_EXCLUDED(mutex_);
  // Appends to the request journal; returns the entry's number (counted from the sim's start, so
  // it stays valid across DELETE /_sim/journal) for JournalHandled.
  uint64_t RecordRequest(nlohmann::json entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Adds to journal entry `entry` (if it was not cleared since) how long the stand-in took over
  // the request: "handledMicros", from the handler's start (the request fully read) to the
  // response handed to the HTTP library, scenario faults (slow, timeouts) included.
  void JournalHandled(uint64_t entry, absl::Duration handled) ABSL_LOCKS_EXCLUDED(mutex_);
  // Stamps the journal entry a request handler made (if any) when the handler returns.
  class HandledTimer;
  nlohmann::json TransactionJson(const Transaction& transaction) const;
  absl::Duration Scaled(absl::Duration duration) const;
  void RunLater(absl::Duration delay, std::function<void()> task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::string NewId(size_t length);

  SimOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
  int port_ = 0;
  absl::Mutex mutex_;
  std::unique_ptr<TimedExecutor> executor_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Transaction> transactions_ ABSL_GUARDED_BY(mutex_);  // by uuid
  // (api key, merchantTransactionId) -> uuid
  std::map<std::pair<std::string, std::string>, std::string> by_merchant_id_
      ABSL_GUARDED_BY(mutex_);
  std::deque<ApiFault> api_faults_ ABSL_GUARDED_BY(mutex_);
  std::deque<CallbackFault> callback_faults_ ABSL_GUARDED_BY(mutex_);
  nlohmann::json request_journal_ ABSL_GUARDED_BY(mutex_) = nlohmann::json::array();
  // Request journal entries dropped by DELETE /_sim/journal, so entry numbers stay unique.
  uint64_t request_journal_cleared_ ABSL_GUARDED_BY(mutex_) = 0;
  nlohmann::json callback_journal_ ABSL_GUARDED_BY(mutex_) = nlohmann::json::array();
  std::deque<absl::Time> status_calls_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::deque<absl::Time>> status_calls_by_id_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace flikpay::sim

#endif  // FLIKPAY_GATEWAY_SIM_BANKART_SIM_H_
