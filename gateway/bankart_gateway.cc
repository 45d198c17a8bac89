#include "gateway/bankart_gateway.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/request_rules.h"
#include "gateway/alias.h"
#include "gateway/bankart_answers.h"
#include "gateway/callback_parser.h"
#include "gateway/money.h"
#include "gateway/signing.h"

namespace flikpay::gateway {
namespace {

using Json = nlohmann::json;

// Bankart signs the Content-Type exactly as sent, so it is one constant, sent on GET too.
constexpr char kContentType[] = "application/json; charset=utf-8";
// The adapter re-checks what the service checked (core/request_rules.h), so a request from any
// other caller cannot reach Bankart malformed either.
void SetIfNotEmpty(Json& object, const char* key, const std::string& value) {
  if (!value.empty()) object[key] = value;
}

std::string QueryParameter(absl::string_view request_uri, absl::string_view name) {
  const size_t question = request_uri.find('?');
  if (question == absl::string_view::npos) return "";
  for (absl::string_view pair : absl::StrSplit(request_uri.substr(question + 1), '&')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(pair, '=');
    if (kv.first == name) return std::string(kv.second);
  }
  return "";
}

std::string HeaderValue(const InboundCallback& callback, const std::string& name) {
  auto it = callback.headers.find(name);
  return it == callback.headers.end() ? "" : it->second;
}

}  // namespace

BankartGateway::BankartGateway(BankartConfig config) : config_(std::move(config)) {
  while (absl::EndsWith(config_.base_url, "/")) config_.base_url.pop_back();
  base_path_ = RequestUriOf(config_.base_url);
  if (base_path_ == "/") base_path_.clear();
  const std::string password = config_.password_mode == PasswordMode::kSha1Rounds
                                   ? HashPassword(config_.api_password)
                                   : config_.api_password;
  authorization_ =
      absl::StrCat("Basic ", Base64Encode(absl::StrCat(config_.api_user, ":", password)));
}

absl::StatusOr<const ConnectorCredentials*> BankartGateway::CredentialsFor(
    Connector connector) const {
  auto it = config_.connectors.find(connector);
  if (it == config_.connectors.end() || it->second.api_key.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no Bankart connector is configured for ", ConnectorName(connector)));
  }
  return &it->second;
}

absl::StatusOr<HttpExchange> BankartGateway::SendSigned(
    const ConnectorCredentials& credentials, const std::string& method, const std::string& path,
    const std::string& body, absl::Time deadline, const std::string& request_id) {
  const absl::Duration remaining = deadline - absl::Now();
  if (remaining <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("deadline passed before the gateway was called");
  }
  const std::string date = FormatHttpDate(absl::Now());
  const std::string request_uri = absl::StrCat(base_path_, path);
  HttpRequest request;
  request.method = method;
  request.url = absl::StrCat(config_.base_url, path);
  request.body = body;
  request.timeout = std::min(remaining, config_.max_call_timeout);
  request.connect_timeout = std::min(request.timeout, config_.connect_timeout);
  request.headers = {
      {"Authorization", authorization_},
      {"Content-Type", kContentType},
      {"Accept", "application/json"},
      {"Date", date},
      {"X-Signature",
       Sign(credentials.shared_secret, SignedParts{method, body, kContentType, date, request_uri})},
  };
  // Unsigned, and only for finding one request in both parties' logs.
  if (!request_id.empty()) request.headers.push_back({"X-Request-ID", request_id});
  return http_.Send(request);
}

absl::StatusOr<SubmitOutcome> BankartGateway::Submit(Connector connector,
                                                     const std::string& operation, const Json& body,
                                                     absl::Time deadline,
                                                     const std::string& request_id) {
  absl::StatusOr<const ConnectorCredentials*> credentials = CredentialsFor(connector);
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<HttpExchange> exchange = SendSigned(
      **credentials, "POST", absl::StrCat("/transaction/", (*credentials)->api_key, "/", operation),
      body.dump(), deadline, request_id);
  if (!exchange.ok()) return exchange.status();
  switch (exchange->failure) {
    case HttpExchange::Failure::kNotSent:
      return absl::UnavailableError(
          absl::StrCat("the gateway could not be reached: ", exchange->failure_reason));
    case HttpExchange::Failure::kNoAnswer:
      return UnknownOutcome(absl::StrCat("no answer from the gateway: ", exchange->failure_reason));
    case HttpExchange::Failure::kNone:
      break;
  }
  return ParseSubmitAnswer(static_cast<int>(exchange->response.status), exchange->response.body);
}

absl::StatusOr<SubmitOutcome> BankartGateway::Debit(const DebitRequest& unchecked,
                                                    absl::Time deadline) {
  DebitRequest request = unchecked;
  if (absl::Status s = NormalizeRequest(request); !s.ok()) return s;
  Json extra = Json::object();
  SetIfNotEmpty(extra, "alias", request.alias);
  if (request.structured_reference) {
    extra["referenceType"] = "structured";
    SetIfNotEmpty(extra, "purposeCode", request.purpose_code);
  }
  if (request.enable_waiting_screen.has_value()) {
    extra["enableWaitingScreen"] = *request.enable_waiting_screen ? "yes" : "no";
  }
  SetIfNotEmpty(extra, "merchantMID", request.merchant_mid);
  SetIfNotEmpty(extra, "merchantTerminalId", request.merchant_terminal_id);
  SetIfNotEmpty(extra, "ultimateCreditorName", request.ultimate_creditor_name);

  Json body = {
      {"merchantTransactionId", request.merchant_transaction_id},
      {"amount", FormatAmount(request.amount_minor)},
      {"currency", "EUR"},  // the only one Flik knows (rules::Currency)
      {"callbackUrl", request.callback_url},
      {"language", "sl"},
  };
  SetIfNotEmpty(body, "successUrl", request.success_url);
  SetIfNotEmpty(body, "errorUrl", request.error_url);
  SetIfNotEmpty(body, "cancelUrl", request.cancel_url);
  SetIfNotEmpty(body, "description", request.description);
  SetIfNotEmpty(body, "merchantMetaData", request.merchant_metadata);
  if (!extra.empty()) body["extraData"] = std::move(extra);
  if (!request.payer_ip.empty()) body["customer"] = {{"ipAddress", request.payer_ip}};
  return Submit(ConnectorFor(request.kind), "debit", body, deadline, request.request_id);
}

absl::StatusOr<SubmitOutcome> BankartGateway::Refund(const RefundRequest& unchecked,
                                                     absl::Time deadline) {
  RefundRequest request = unchecked;
  if (absl::Status s = NormalizeRequest(request); !s.ok()) return s;
  if (request.reference_uuid.empty()) {
    return rules::Invalid("reference_uuid", "the original payment's gateway uuid is required");
  }
  Json body = {
      {"merchantTransactionId", request.merchant_transaction_id},
      {"referenceUuid", request.reference_uuid},
      {"amount", FormatAmount(request.amount_minor)},
      {"currency", "EUR"},  // the only one Flik knows (rules::Currency)
      {"callbackUrl", request.callback_url},
  };
  SetIfNotEmpty(body, "description", request.description);
  return Submit(request.connector, "refund", body, deadline, request.request_id);
}

absl::StatusOr<SubmitOutcome> BankartGateway::Payout(const PayoutRequest& unchecked,
                                                     absl::Time deadline) {
  PayoutRequest request = unchecked;
  if (absl::Status s = NormalizeRequest(request); !s.ok()) return s;
  Json body = {
      {"merchantTransactionId", request.merchant_transaction_id},
      {"amount", FormatAmount(request.amount_minor)},
      {"currency", "EUR"},  // the only one Flik knows (rules::Currency)
      {"callbackUrl", request.callback_url},
      {"extraData", {{"alias", request.alias}}},
  };
  SetIfNotEmpty(body, "description", request.description);
  return Submit(Connector::kPayout, "payout", body, deadline, request.request_id);
}

absl::StatusOr<StatusReport> BankartGateway::StatusByUuid(Connector connector,
                                                          absl::string_view uuid,
                                                          absl::Time deadline) {
  return QueryStatus(connector, "getByUuid", uuid, deadline);
}

absl::StatusOr<StatusReport> BankartGateway::StatusByMerchantTransactionId(
    Connector connector, absl::string_view merchant_transaction_id, absl::Time deadline) {
  return QueryStatus(connector, "getByMerchantTransactionId", merchant_transaction_id, deadline);
}

absl::StatusOr<StatusReport> BankartGateway::QueryStatus(Connector connector,
                                                         const std::string& lookup,
                                                         absl::string_view id,
                                                         absl::Time deadline) {
  if (absl::Status s =
          rules::LookupId(lookup == "getByUuid" ? "uuid" : "merchant_transaction_id", id);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<const ConnectorCredentials*> credentials = CredentialsFor(connector);
  if (!credentials.ok()) return credentials.status();
  const std::string path = absl::StrCat("/status/", (*credentials)->api_key, "/", lookup, "/", id);

  absl::Duration backoff = config_.status_initial_backoff;
  absl::Status last_error = absl::UnavailableError("the gateway's status API did not answer");
  for (int attempt = 1; attempt <= config_.status_max_attempts; ++attempt) {
    absl::StatusOr<HttpExchange> exchange = SendSigned(**credentials, "GET", path, "", deadline);
    if (!exchange.ok()) return exchange.status();
    absl::Duration wait = backoff;
    if (exchange->failure != HttpExchange::Failure::kNone) {
      last_error =
          absl::UnavailableError(absl::StrCat("gateway status API: ", exchange->failure_reason));
    } else if (exchange->response.status == 429) {
      last_error = absl::ResourceExhaustedError("gateway status API rate limit (429)");
      int64_t retry_after = 0;
      auto header = exchange->response.headers.find("retry-after");
      if (header != exchange->response.headers.end() &&
          absl::SimpleAtoi(header->second, &retry_after)) {
        wait = std::max(wait, absl::Seconds(retry_after));
      }
    } else if (exchange->response.status >= 500) {
      last_error = absl::UnavailableError(
          absl::StrCat("gateway status API answered HTTP ", exchange->response.status));
    } else {
      return ParseStatusAnswer(exchange->response.body);
    }
    if (attempt == config_.status_max_attempts || absl::Now() + wait >= deadline) break;
    absl::SleepFor(wait);
    backoff = std::min(backoff * 2, config_.status_max_backoff);
  }
  return last_error;
}

absl::StatusOr<CallbackEvent> BankartGateway::VerifyCallback(const InboundCallback& callback) {
  std::string signature = HeaderValue(callback, "x-signature");
  std::string api_key_hint;
  bool v2_header = false;
  if (signature.empty()) {
    // XML v2 integrations carry "Authorization: Gateway API_KEY:signature" instead.
    v2_header = true;
    const std::string authorization = HeaderValue(callback, "authorization");
    if (absl::StartsWith(authorization, "Gateway ")) {
      std::pair<std::string, std::string> parts =
          absl::StrSplit(authorization.substr(8), absl::MaxSplits(':', 1));
      api_key_hint = parts.first;
      signature = parts.second;
    }
  }
  if (signature.empty()) return absl::UnauthenticatedError("callback is not signed");
  std::string date = HeaderValue(callback, "x-date");
  if (date.empty()) date = HeaderValue(callback, "date");
  if (date.empty()) return StaleCallbackError("callback has no Date header");
  absl::StatusOr<absl::Time> sent_at = ParseHttpDate(date);
  if (!sent_at.ok()) return StaleCallbackError(sent_at.status().message());
  const absl::Duration skew = absl::AbsDuration(config_.clock() - *sent_at);
  if (skew > config_.callback_date_tolerance) {
    return StaleCallbackError(absl::StrCat(
        "callback Date is ", absl::ToInt64Seconds(skew), " s away from now (tolerance ",
        absl::ToInt64Seconds(config_.callback_date_tolerance), " s)"));
  }

  std::vector<Connector> candidates;
  if (std::optional<Connector> named =
          ParseConnectorName(QueryParameter(callback.request_uri, "connector"))) {
    candidates.push_back(*named);
  } else {
    for (const auto& [connector, credentials] : config_.connectors) {
      if (api_key_hint.empty() || api_key_hint == credentials.api_key) {
        candidates.push_back(connector);
      }
    }
  }
  // The v2 header is a legacy form: only connectors configured for it may be signed so.
  std::erase_if(candidates, [&](Connector connector) {
    auto it = config_.connectors.find(connector);
    return it == config_.connectors.end() || (v2_header && !it->second.legacy_forms.v2_message);
  });
  const bool any_md5 = std::any_of(candidates.begin(), candidates.end(), [&](Connector c) {
    return config_.connectors.at(c).legacy_forms.md5_body_hash;
  });
  // Hashed once, however many secrets are tried.
  const BodyDigests digests = DigestBody(callback.body, any_md5);
  // SignedParts only views its strings, so the header value needs to outlive it.
  const std::string content_type = HeaderValue(callback, "content-type");
  const SignedParts parts{callback.method, callback.body, content_type, date, callback.request_uri};
  std::optional<Connector> verified_by;
  for (Connector connector : candidates) {
    const ConnectorCredentials& credentials = config_.connectors.at(connector);
    if (VerifySignature(credentials.shared_secret, parts, digests, signature,
                        credentials.legacy_forms)) {
      verified_by = connector;
      break;
    }
  }
  if (!verified_by.has_value()) {
    return absl::UnauthenticatedError("callback signature does not match");
  }
  absl::StatusOr<CallbackEvent> event = ParseCallbackBody(callback.body);
  if (!event.ok()) return event.status();
  event->connector = verified_by;
  return event;
}

}  // namespace flikpay::gateway
