#ifndef FLIKPAY_GATEWAY_BANKART_GATEWAY_H_
#define FLIKPAY_GATEWAY_BANKART_GATEWAY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"
#include "gateway/http_client.h"
#include "gateway/signing.h"
#include "nlohmann/json.hpp"

namespace flikpay::gateway {

struct ConnectorCredentials {
  std::string api_key;
  std::string shared_secret;
  // Callback signature forms accepted besides v3 (and, with v2_message, the v2
  // "Authorization: Gateway key:signature" header): none unless configured.
  LegacySignatureForms legacy_forms;
};

// The official API v3 docs send the API password as is; Bankart's published clients send its SHA-1
// applied ten times. Which one a merchant's account expects is a setting.
enum class PasswordMode { kPlain, kSha1Rounds };

struct BankartConfig {
  // e.g. "https://gateway.bankart.si/api/v3" (production) or the local bankart-sim.
  std::string base_url;
  std::string api_user;
  std::string api_password;
  PasswordMode password_mode = PasswordMode::kSha1Rounds;
  std::map<Connector, ConnectorCredentials> connectors;

  absl::Duration connect_timeout = absl::Seconds(3);
  // Upper bound for a call when the caller's deadline is further away.
  absl::Duration max_call_timeout = absl::Seconds(30);
  // How far a callback's Date may be from now.
  absl::Duration callback_date_tolerance = absl::Seconds(60);
  // Status queries: attempts and backoff between them. Every attempt counts against Bankart's
  // quota; flikpay-server sends one per query it took from the shared quota (and retries by its
  // schedule).
  int status_max_attempts = 5;
  absl::Duration status_initial_backoff = absl::Milliseconds(200);
  absl::Duration status_max_backoff = absl::Seconds(5);
  // Tests replace the clock to check the Date tolerance.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// The real gateway: Bankart's JSON API v3 over HTTP(S), every request signed.
class BankartGateway : public Gateway {
 public:
  explicit BankartGateway(BankartConfig config);

  absl::StatusOr<SubmitOutcome> Debit(const DebitRequest& request, absl::Time deadline) override;
  absl::StatusOr<SubmitOutcome> Refund(const RefundRequest& request, absl::Time deadline) override;
  absl::StatusOr<SubmitOutcome> Payout(const PayoutRequest& request, absl::Time deadline) override;
  absl::StatusOr<StatusReport> StatusByUuid(Connector connector, absl::string_view uuid,
                                            absl::Time deadline) override;
  absl::StatusOr<StatusReport> StatusByMerchantTransactionId(
      Connector connector, absl::string_view merchant_transaction_id, absl::Time deadline) override;
  absl::StatusOr<CallbackEvent> VerifyCallback(const InboundCallback& callback) override;

 private:
  absl::StatusOr<const ConnectorCredentials*> CredentialsFor(Connector connector) const;
  // Signs and sends one request; `path` is below base_url, e.g. "/transaction/KEY/debit".
  // `request_id`, when set, goes along as X-Request-ID.
  absl::StatusOr<HttpExchange> SendSigned(const ConnectorCredentials& credentials,
                                          const std::string& method, const std::string& path,
                                          const std::string& body, absl::Time deadline,
                                          const std::string& request_id = "");
  absl::StatusOr<SubmitOutcome> Submit(Connector connector, const std::string& operation,
                                       const nlohmann::json& body, absl::Time deadline,
                                       const std::string& request_id);
  absl::StatusOr<StatusReport> QueryStatus(Connector connector, const std::string& lookup,
                                           absl::string_view id, absl::Time deadline);

  BankartConfig config_;
  std::string base_path_;  // the path part of base_url, e.g. "/api/v3"
  std::string authorization_;
  HttpClient http_;
};

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_BANKART_GATEWAY_H_
