#include "server/payment_service.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/api_rules.h"
#include "core/request_rules.h"
#include "core/state_machine.h"
#include "gateway/alias.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "server/log.h"

namespace flikpay::server {

const char kAliasDoesNotExistPayerMessage[] =
    "Vnesli ste napačen kontaktni podatek (alias). Svoj alias lahko preverite v nastavitvah v "
    "aplikaciji za Flik plačila. Običajno je to telefonska številka ali e-mail. Če še nimate "
    "omogočenega Flik plačevanja, je postopek registracije opisan na sledeči povezavi: "
    "https://www.flik.si/#zacni-z-uporabo";

namespace {

// How long one delivery of a callback holds its signature while it is handled: far longer than
// the handling takes (a few Redis round trips and a replica wait), short enough that Bankart's
// retries find it free again when the flikpay replica handling it died.
constexpr absl::Duration kCallbackHandlingLease = absl::Seconds(30);

using gateway::SubmitOutcome;
using google::protobuf::util::TimeUtil;

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

std::string Hex(const unsigned char* digest, size_t size) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), size));
}

// The request parameters, reduced to what identifies "the same request": an HMAC-SHA512 with the
// server's key, "h1:" and hex. A plain hash of the request would let anyone who can read Redis
// recover the full phone number behind a masked alias by trying the few million candidates.
std::string Fingerprint(const google::protobuf::Message& normalized_request,
                        absl::string_view key) {
  const std::string bytes = DeterministicBytes(normalized_request);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha512(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest, &size);
  return absl::StrCat("h1:", Hex(digest, size));
}

// The unkeyed SHA-512 the first releases stored: still recognised, so a request repeated across
// the upgrade is still the same request.
std::string LegacyFingerprint(const google::protobuf::Message& normalized_request) {
  const std::string bytes = DeterministicBytes(normalized_request);
  unsigned char digest[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return Hex(digest, sizeof(digest));
}

v1::Transaction NewRecord(const std::string& id, v1::TransactionType type, int64_t amount,
                          const std::string& description) {
  v1::Transaction transaction;
  transaction.set_merchant_transaction_id(id);
  transaction.set_type(type);
  transaction.set_status(v1::TRANSACTION_STATUS_UNKNOWN);
  transaction.set_amount_minor(amount);
  transaction.set_currency("EUR");
  transaction.set_description(description);
  transaction.set_version(1);
  *transaction.mutable_created_at() = TimeUtil::GetCurrentTime();
  *transaction.mutable_updated_at() = transaction.created_at();
  return transaction;
}

gateway::RtpKind ToGatewayKind(v1::RtpKind kind) {
  switch (kind) {
    case v1::RTP_KIND_IN_PERSON:
      return gateway::RtpKind::kInPerson;
    case v1::RTP_KIND_OUT_OF_BAND:
      return gateway::RtpKind::kOutOfBand;
    default:
      return gateway::RtpKind::kEcommerce;
  }
}

bool HasCode(const std::vector<gateway::GatewayError>& errors, int code) {
  return std::any_of(errors.begin(), errors.end(),
                     [code](const gateway::GatewayError& error) { return error.code == code; });
}

// The error that explains a failure: the payer's decline (2002) or an alias that does not exist
// (2007) wherever it stands in the list (Bankart may list a generic error first), else the first.
std::optional<gateway::GatewayError> DecisiveError(
    const std::vector<gateway::GatewayError>& errors) {
  for (int code : {2002, 2007}) {
    for (const gateway::GatewayError& error : errors) {
      if (error.code == code) return error;
    }
  }
  if (errors.empty()) return std::nullopt;
  return errors.front();
}

// One rule for callbacks, status answers and declined sends, so the same payer decline cannot end
// as ERROR one way and CANCELLED another: a failure is CANCELLED when the gateway says so
// (transactionStatus CANCELLED) or lists error 2002 "user cancelled" (IXOPAY's error list, seed
// 000's cancel.debit scenario); every other failure is ERROR.
v1::TransactionStatus FailureStatus(bool gateway_says_cancelled,
                                    const std::vector<gateway::GatewayError>& errors) {
  return gateway_says_cancelled || HasCode(errors, 2002) ? v1::TRANSACTION_STATUS_CANCELLED
                                                         : v1::TRANSACTION_STATUS_ERROR;
}

void SetError(v1::Transaction& transaction, const gateway::GatewayError& error) {
  v1::TransactionError* out = transaction.mutable_error();
  out->set_code(error.code);
  out->set_message(error.message);
  out->set_adapter_code(error.adapter_code);
  out->set_adapter_message(error.adapter_message);
  if (error.code == 2007) out->set_payer_message(kAliasDoesNotExistPayerMessage);
}

v1::TransactionStatus StatusOfCallback(const gateway::CallbackEvent& event) {
  switch (event.result) {
    case gateway::CallbackEvent::Result::kOk:
      return v1::TRANSACTION_STATUS_SUCCESS;
    case gateway::CallbackEvent::Result::kPending:
      return v1::TRANSACTION_STATUS_PENDING;
    case gateway::CallbackEvent::Result::kError:
      return FailureStatus(false, event.errors);
  }
  return v1::TRANSACTION_STATUS_ERROR;
}

v1::TransactionStatus StatusOfReport(const gateway::StatusReport& report) {
  switch (report.status) {
    case gateway::StatusReport::Status::kSuccess:
      return v1::TRANSACTION_STATUS_SUCCESS;
    case gateway::StatusReport::Status::kPending:
    case gateway::StatusReport::Status::kRedirect:
      return v1::TRANSACTION_STATUS_PENDING;
    case gateway::StatusReport::Status::kCancelled:
      return FailureStatus(true, report.errors);
    case gateway::StatusReport::Status::kError:
      return FailureStatus(false, report.errors);
  }
  return v1::TRANSACTION_STATUS_UNKNOWN;
}

GatewayNews NewsOfReport(const gateway::StatusReport& report, v1::EventSource source) {
  GatewayNews news;
  news.status = StatusOfReport(report);
  news.source = source;
  news.uuid = report.uuid;
  news.purchase_id = report.purchase_id;
  news.adapter_reference_id = report.adapter_reference_id;
  news.error = DecisiveError(report.errors);
  return news;
}

// NOT_FOUND in one wording whatever the reason (never stored, or another caller's), so the
// message cannot tell a caller which of another's ids exist.
absl::Status NoSuchTransaction(const rules::StatusLookup& lookup) {
  return absl::NotFoundError(absl::StrCat(
      "no transaction with ", lookup.by_gateway_uuid ? "gateway_uuid " : "merchant_transaction_id ",
      lookup.id));
}

// What makes a verified callback unique: its signature (the signed message includes the Date).
// Every callback the Bankart adapter verifies carries one.
std::optional<std::string> SignatureOf(const gateway::InboundCallback& callback) {
  for (const char* header : {"x-signature", "authorization"}) {
    auto found = callback.headers.find(header);
    if (found != callback.headers.end()) return found->second;
  }
  return std::nullopt;
}

v1::TransactionType ApiType(gateway::TransactionType type) {
  switch (type) {
    case gateway::TransactionType::kDebit:
      return v1::TRANSACTION_TYPE_DEBIT;
    case gateway::TransactionType::kRefund:
      return v1::TRANSACTION_TYPE_REFUND;
    case gateway::TransactionType::kPayout:
      return v1::TRANSACTION_TYPE_PAYOUT;
    default:
      return v1::TRANSACTION_TYPE_UNSPECIFIED;
  }
}

// Whether the gateway certainly moved no money and holds nothing that still could: what was
// reserved against the caller's daily limit is given back.
bool CertainlyNothingMoved(const absl::StatusOr<SubmitOutcome>& outcome) {
  if (!outcome.ok()) return true;
  if (outcome->kind != SubmitOutcome::Kind::kDeclined) return false;
  // "Retry later" with a uuid: the transaction exists at Bankart and may yet succeed.
  return !(outcome->retryable && !outcome->uuid.empty());
}

}  // namespace

PaymentService::PaymentService(gateway::Gateway& gateway, store::Store& store, Metrics& metrics,
                               ServiceConfig config, RecordCache* cache)
    : gateway_(gateway),
      store_(store),
      metrics_(metrics),
      config_(std::move(config)),
      cache_(cache) {
  metrics_.status_query_quota_left.Set(config_.status_queries_per_window);
}

void PaymentService::ObserveStatusQuota() {
  absl::StatusOr<int> used = store_.StatusQueriesInWindow(config_.status_quota_window);
  if (!used.ok()) return;  // the reconciler's own store reads report the outage
  metrics_.status_query_quota_left.Set(std::max(0, config_.status_queries_per_window - *used));
}

std::string PaymentService::CallbackUrl(gateway::Connector connector) const {
  return absl::StrCat(config_.public_callback_url,
                      absl::StrContains(config_.public_callback_url, '?') ? "&" : "?",
                      "connector=", gateway::ConnectorName(connector));
}

Caller Caller::Of(std::string id, std::shared_ptr<const core::CallerPolicy> policy) {
  Caller caller;
  caller.id = std::move(id);
  caller.grant = policy == nullptr ? nullptr : policy->Find(caller.id);
  caller.policy = std::move(policy);
  return caller;
}

bool Caller::MaySee(const v1::Transaction& transaction) const {
  return (grant != nullptr && grant->read_all) || transaction.created_by() == id;
}

absl::StatusOr<v1::Transaction> PaymentService::ClaimAndSend(
    const Caller& caller, core::Rpc rpc, v1::Transaction initial,
    const google::protobuf::Message& normalized_request, absl::Time deadline,
    absl::FunctionRef<absl::StatusOr<SubmitOutcome>(absl::Time)> send) {
  const std::string id = initial.merchant_transaction_id();
  if (absl::Status s =
          core::CheckTransactionLimit(*caller.grant, caller.id, rpc, initial.amount_minor());
      !s.ok()) {
    return s;
  }
  initial.set_created_by(caller.id);
  initial.set_request_id(caller.request_id);
  const std::string fingerprint = Fingerprint(normalized_request, config_.fingerprint_key);
  const absl::Time first_check = config_.schedule.FirstCheck(deadline);
  // A refund's claim also reserves its amount on the original, in the same atomic step.
  absl::StatusOr<store::BeginResult> claimed =
      initial.type() == v1::TRANSACTION_TYPE_REFUND
          ? store_.BeginRefund(initial, fingerprint, deadline, first_check,
                               store::RefundCap::kEnforce)
          : store_.Begin(initial, fingerprint, deadline, first_check);
  if (!claimed.ok()) {
    if (absl::IsUnavailable(claimed.status())) metrics_.store_unavailable.Increment();
    return claimed.status();
  }
  if (!claimed->created) {
    if (claimed->transaction.created_by() != caller.id) {
      return absl::AlreadyExistsError(absl::StrCat(
          "merchant_transaction_id ", id, " is already used by another caller; choose another id"));
    }
    if (!claimed->same_request &&
        claimed->stored_fingerprint != LegacyFingerprint(normalized_request)) {
      return absl::AlreadyExistsError(
          absl::StrCat("merchant_transaction_id ", id,
                       " is already used by a request with different parameters"));
    }
    if (claimed->in_flight) {
      return absl::AbortedError(
          absl::StrCat("merchant_transaction_id ", id,
                       ": the first request with this id is still being processed; retry shortly"));
    }
    return claimed->transaction;
  }
  // The daily limit is counted once the id is ours, so a repeated request is not counted twice.
  const std::optional<int64_t> daily_limit = core::DailyLimit(*caller.grant, rpc);
  absl::Time reserved_at;
  if (daily_limit.has_value()) {
    absl::StatusOr<store::SpendResult> spend = store_.ReserveSpend(
        caller.id, core::RpcName(rpc), initial.amount_minor(), *daily_limit, core::kSpendWindow);
    if (!spend.ok() || !spend->granted) {
      Forget(id);
      if (!spend.ok()) {
        if (absl::IsUnavailable(spend.status())) metrics_.store_unavailable.Increment();
        return spend.status();
      }
      return core::DailyLimitExceeded(caller.id, rpc, initial.amount_minor(), spend->spent_minor,
                                      *daily_limit);
    }
    reserved_at = spend->reserved_at;
  }
  // The margin leaves time to store the gateway's answer before the caller's deadline.
  const absl::StatusOr<SubmitOutcome> outcome = send(deadline - config_.store_margin);
  if (daily_limit.has_value() && CertainlyNothingMoved(outcome)) {
    if (absl::Status s = store_.ReleaseSpend(caller.id, core::RpcName(rpc), initial.amount_minor(),
                                             reserved_at, core::kSpendWindow);
        !s.ok()) {
      Log(LogLevel::kWarning, "cannot give back %d cents of %s's daily %s limit: %s",
          initial.amount_minor(), caller.id, core::RpcName(rpc), s.message());
    }
  }
  return Record(id, outcome, deadline);
}

absl::StatusOr<v1::Transaction> PaymentService::CreateRtp(const Caller& caller,
                                                          const v1::CreateRtpRequest& request,
                                                          absl::Time deadline) {
  if (absl::Status s = rules::Kind(request.kind()); !s.ok()) return s;
  if (absl::Status s = core::PermitKind(*caller.grant, caller.id, request.kind()); !s.ok()) {
    return s;
  }
  gateway::DebitRequest debit;
  debit.kind = ToGatewayKind(request.kind());
  debit.merchant_transaction_id = request.merchant_transaction_id();
  debit.request_id = caller.request_id;
  debit.amount_minor = request.amount_minor();
  debit.currency = request.currency();
  debit.alias = request.alias();
  debit.description = request.description();
  debit.success_url = request.success_url();
  debit.cancel_url = request.cancel_url();
  debit.error_url = request.error_url();
  debit.callback_url = CallbackUrl(gateway::ConnectorFor(debit.kind));
  debit.structured_reference = request.structured_reference();
  debit.purpose_code = request.purpose_code();
  if (request.has_enable_waiting_screen()) {
    debit.enable_waiting_screen = request.enable_waiting_screen();
  }
  debit.merchant_mid = request.merchant_mid();
  debit.merchant_terminal_id = request.merchant_terminal_id();
  debit.ultimate_creditor_name = request.ultimate_creditor_name();
  debit.payer_ip = request.payer_ip();
  debit.merchant_metadata = request.merchant_metadata();
  if (absl::Status s = gateway::NormalizeRequest(debit); !s.ok()) return s;

  v1::CreateRtpRequest normalized = request;
  normalized.set_currency(debit.currency);
  normalized.set_alias(debit.alias);
  v1::Transaction initial = NewRecord(request.merchant_transaction_id(), v1::TRANSACTION_TYPE_DEBIT,
                                      request.amount_minor(), request.description());
  initial.set_kind(request.kind());
  initial.set_alias(gateway::MaskAlias(debit.alias));
  return ClaimAndSend(caller, core::Rpc::kCreateRtp, std::move(initial), normalized, deadline,
                      [&](absl::Time send_by) { return gateway_.Debit(debit, send_by); });
}

absl::StatusOr<v1::Transaction> PaymentService::Refund(const Caller& caller,
                                                       const v1::RefundRequest& request,
                                                       absl::Time deadline) {
  if (absl::Status s = rules::MerchantTransactionId("original_merchant_transaction_id",
                                                    request.original_merchant_transaction_id());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = rules::RefundIds(request.merchant_transaction_id(),
                                        request.original_merchant_transaction_id());
      !s.ok()) {
    return s;
  }
  // The fields first, so bad input is named before the store is asked for the original;
  // NormalizeRequest below repeats this with the rest of the refund's rules.
  if (absl::Status s =
          rules::MoneyMovement(request.merchant_transaction_id(), request.amount_minor(),
                               request.currency(), request.description());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<v1::Transaction> original = store_.Get(request.original_merchant_transaction_id());
  if (original.ok() && original->created_by() != caller.id) {
    // Another caller's debit is not this caller's to refund; without read_all it does not even
    // see that it exists.
    if (!caller.MaySee(*original))
      original = absl::NotFoundError("not the caller's");
    else {
      return absl::PermissionDeniedError(absl::StrCat(
          "original_merchant_transaction_id: ", request.original_merchant_transaction_id(),
          " was created by another caller; only its creator may refund it"));
    }
  }
  if (!original.ok()) {
    if (absl::IsNotFound(original.status())) {
      return absl::NotFoundError(absl::StrCat("original_merchant_transaction_id: no transaction ",
                                              request.original_merchant_transaction_id()));
    }
    return original.status();
  }
  absl::StatusOr<gateway::Connector> connector = ConnectorOf(*original);
  if (!connector.ok()) return connector.status();
  gateway::RefundRequest refund;
  refund.connector = *connector;
  refund.merchant_transaction_id = request.merchant_transaction_id();
  refund.request_id = caller.request_id;
  refund.reference_uuid = original->gateway_uuid();
  refund.amount_minor = request.amount_minor();
  refund.currency = request.currency();
  refund.callback_url = CallbackUrl(*connector);
  refund.description = request.description();
  if (absl::Status s = gateway::NormalizeRequest(refund); !s.ok()) return s;

  v1::RefundRequest normalized = request;
  normalized.set_currency(refund.currency);
  v1::Transaction initial =
      NewRecord(request.merchant_transaction_id(), v1::TRANSACTION_TYPE_REFUND,
                request.amount_minor(), request.description());
  initial.set_original_merchant_transaction_id(request.original_merchant_transaction_id());
  return ClaimAndSend(caller, core::Rpc::kRefund, std::move(initial), normalized, deadline,
                      [&](absl::Time send_by) { return gateway_.Refund(refund, send_by); });
}

absl::StatusOr<v1::Transaction> PaymentService::Payout(const Caller& caller,
                                                       const v1::PayoutRequest& request,
                                                       absl::Time deadline) {
  gateway::PayoutRequest payout;
  payout.merchant_transaction_id = request.merchant_transaction_id();
  payout.request_id = caller.request_id;
  payout.alias = request.alias();
  payout.amount_minor = request.amount_minor();
  payout.currency = request.currency();
  payout.callback_url = CallbackUrl(gateway::Connector::kPayout);
  payout.description = request.description();
  if (absl::Status s = gateway::NormalizeRequest(payout); !s.ok()) return s;

  v1::PayoutRequest normalized = request;
  normalized.set_currency(payout.currency);
  normalized.set_alias(payout.alias);
  v1::Transaction initial =
      NewRecord(request.merchant_transaction_id(), v1::TRANSACTION_TYPE_PAYOUT,
                request.amount_minor(), request.description());
  initial.set_alias(gateway::MaskAlias(payout.alias));
  return ClaimAndSend(caller, core::Rpc::kPayout, std::move(initial), normalized, deadline,
                      [&](absl::Time send_by) { return gateway_.Payout(payout, send_by); });
}

absl::StatusOr<v1::Transaction> PaymentService::Record(const std::string& id,
                                                       const absl::StatusOr<SubmitOutcome>& outcome,
                                                       absl::Time deadline) {
  if (!outcome.ok()) {
    // Certainly not sent: forget the claim so the caller can retry with the same id.
    Forget(id);
    if (absl::IsInvalidArgument(outcome.status())) return outcome.status();
    return absl::UnavailableError(absl::StrCat(
        "merchant_transaction_id ", id,
        ": the payment gateway could not be reached and nothing was sent; retry with the same id"));
  }
  store::Report report;
  report.source = v1::EVENT_SOURCE_RPC;
  report.ends_flight = true;
  switch (outcome->kind) {
    case SubmitOutcome::Kind::kAccepted:
      report.status = outcome->return_type == gateway::ReturnType::kFinished
                          ? v1::TRANSACTION_STATUS_SUCCESS
                          : v1::TRANSACTION_STATUS_PENDING;
      report.fill = [&outcome](v1::Transaction& t) {
        t.set_gateway_uuid(outcome->uuid);
        t.set_purchase_id(outcome->purchase_id);
        t.set_redirect_url(outcome->redirect_url);
        t.set_adapter_reference_id(outcome->adapter_reference_id);
        if (outcome->expires_at.has_value()) {
          *t.mutable_expires_at() =
              TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(*outcome->expires_at));
        }
      };
      break;
    case SubmitOutcome::Kind::kDeclined:
      if (outcome->retryable && outcome->uuid.empty()) {
        Forget(id);
        return absl::UnavailableError(
            absl::StrCat("merchant_transaction_id ", id, ": the payment gateway is busy (",
                         outcome->errors.empty() ? 0 : outcome->errors[0].code,
                         ") and created nothing; retry with the same id"));
      }
      if (outcome->retryable) {
        // "Retry later", yet with a uuid: the transaction exists at Bankart, and a retry would be
        // refused as a duplicate id (3004). Keep the record; the status API tells its true state.
        report.status = v1::TRANSACTION_STATUS_UNKNOWN;
        report.fill = [&outcome](v1::Transaction& t) { t.set_gateway_uuid(outcome->uuid); };
        break;
      }
      report.status = FailureStatus(false, outcome->errors);
      report.fill = [&outcome](v1::Transaction& t) {
        if (!outcome->uuid.empty()) t.set_gateway_uuid(outcome->uuid);
        if (std::optional<gateway::GatewayError> error = DecisiveError(outcome->errors)) {
          SetError(t, *error);
        }
      };
      break;
    case SubmitOutcome::Kind::kUnknown:
      Log(LogLevel::kWarning, "gateway outcome unknown for %s: %s; stored as UNKNOWN", id,
          outcome->unknown_reason);
      report.status = v1::TRANSACTION_STATUS_UNKNOWN;
      break;
  }
  const bool report_status_unknown = report.status == v1::TRANSACTION_STATUS_UNKNOWN;
  absl::StatusOr<store::ApplyResult> applied = ApplyReport(id, std::move(report));
  if (!applied.ok()) {
    // The store's own words go to the log, not to the caller.
    Log(LogLevel::kWarning, "the gateway's answer for %s could not be stored: %s", id,
        applied.status().message());
    return absl::UnavailableError(
        absl::StrCat("merchant_transaction_id ", id,
                     ": the gateway answered but the answer could not be stored; the outcome will "
                     "be reconciled, do not retry under a new id"));
  }
  if (report_status_unknown) {
    const std::string message = absl::StrCat(
        "merchant_transaction_id ", id,
        ": the payment gateway did not answer in time (or asked to retry later, having created "
        "it); the payment may exist. flikpay will find out: watch GetStatus or StreamStatus, and "
        "retry only with the same id");
    return absl::Now() >= deadline ? absl::DeadlineExceededError(message)
                                   : absl::UnavailableError(message);
  }
  return applied->transaction;
}

absl::Status PaymentService::TakeStatusQuery(core::QueryPriority priority) {
  const int ceiling = core::QuotaCeiling(priority, config_.status_queries_per_window);
  absl::StatusOr<store::QueryTake> taken =
      store_.TakeStatusQuery(ceiling, config_.status_quota_window);
  if (!taken.ok()) {
    if (absl::IsUnavailable(taken.status())) metrics_.store_unavailable.Increment();
    return taken.status();
  }
  metrics_.status_query_quota_left.Set(
      std::max(0, config_.status_queries_per_window - taken->in_window));
  if (!taken->granted) {
    metrics_.status_queries_deferred.Increment();
    return absl::ResourceExhaustedError(absl::StrCat(
        "Bankart's status queries are rationed (", config_.status_queries_per_window, " per ",
        absl::FormatDuration(config_.status_quota_window), " for all replicas, ", ceiling,
        " of them for a ", core::QueryPriorityName(priority),
        "); retry in a few seconds, or read the stored status without refresh"));
  }
  return absl::OkStatus();
}

void PaymentService::Forget(const std::string& id) {
  absl::Status s = store_.Abandon(id);
  if (cache_ != nullptr) cache_->Invalidate(id);  // never final, so never cached; to be sure
  if (!s.ok()) {
    // The claim stays until its deadline; the reconciler then learns from Bankart that nothing was
    // created. Until then a retry with this id is ABORTED.
    if (absl::IsUnavailable(s)) metrics_.store_unavailable.Increment();
    Log(LogLevel::kWarning, "cannot release the claim on %s after a request that was not sent: %s",
        id, s.message());
  }
}

absl::StatusOr<gateway::Connector> PaymentService::ConnectorOf(const v1::Transaction& transaction) {
  switch (transaction.type()) {
    case v1::TRANSACTION_TYPE_DEBIT:
      return gateway::ConnectorFor(ToGatewayKind(transaction.kind()));
    case v1::TRANSACTION_TYPE_PAYOUT:
      return gateway::Connector::kPayout;
    case v1::TRANSACTION_TYPE_REFUND: {
      absl::StatusOr<v1::Transaction> original =
          store_.Get(transaction.original_merchant_transaction_id());
      if (!original.ok()) return original.status();
      return ConnectorOf(*original);
    }
    default:
      return absl::InternalError("transaction of unknown type");
  }
}

absl::StatusOr<v1::Transaction> PaymentService::GetStatus(const Caller& caller,
                                                          const v1::GetStatusRequest& request,
                                                          absl::Time deadline) {
  absl::StatusOr<rules::StatusLookup> lookup = rules::Lookup(request);
  if (!lookup.ok()) return lookup.status();
  std::string id = lookup->id;
  if (lookup->by_gateway_uuid) {
    absl::StatusOr<std::string> found = store_.FindByGatewayUuid(lookup->id);
    if (absl::IsNotFound(found.status())) return NoSuchTransaction(*lookup);
    if (!found.ok()) return found.status();
    id = *found;
  }
  absl::StatusOr<v1::Transaction> transaction = ReadRecord(id);
  if (transaction.ok() && !caller.MaySee(*transaction)) {
    // The same answer as for an id nobody used: another caller's ids are not this caller's to
    // probe.
    transaction = absl::NotFoundError("another caller's");
  }
  if (absl::IsNotFound(transaction.status())) return NoSuchTransaction(*lookup);
  if (!transaction.ok() || !request.refresh()) return transaction;
  return Refresh(*transaction, deadline);
}

absl::StatusOr<v1::Transaction> PaymentService::ReadRecord(const std::string& id) {
  if (cache_ == nullptr) return store_.Get(id);
  const uint64_t generation = store_.PrimaryGeneration();
  const absl::Time now = absl::Now();
  if (std::shared_ptr<const v1::Transaction> cached = cache_->Lookup(id, generation, now)) {
    metrics_.record_cache_hits.Increment();
    return *cached;
  }
  metrics_.record_cache_misses.Increment();
  // Taken before the read: a change the hub hears of meanwhile refuses the fill.
  const uint64_t ticket = cache_->Ticket(generation);
  absl::StatusOr<v1::Transaction> transaction = store_.Get(id);
  if (transaction.ok() && ticket != 0 && store_.PrimaryGeneration() == generation) {
    cache_->Fill(*transaction, ticket, now);
  }
  return transaction;
}

absl::StatusOr<v1::Transaction> PaymentService::Refresh(const v1::Transaction& transaction,
                                                        absl::Time deadline) {
  absl::StatusOr<gateway::Connector> connector = ConnectorOf(transaction);
  if (!connector.ok()) return connector.status();
  if (absl::Status quota = TakeStatusQuery(core::QueryPriority::kCallerRefresh); !quota.ok()) {
    return quota;
  }
  absl::StatusOr<gateway::StatusReport> report =
      transaction.gateway_uuid().empty()
          ? gateway_.StatusByMerchantTransactionId(*connector,
                                                   transaction.merchant_transaction_id(), deadline)
          : gateway_.StatusByUuid(*connector, transaction.gateway_uuid(), deadline);
  if (!report.ok()) {
    // libcurl's and the parser's words go to the log, not to the caller.
    Log(LogLevel::kWarning, "status query for %s failed: %s", transaction.merchant_transaction_id(),
        report.status().message());
    return absl::UnavailableError(
        "the gateway's status API did not answer; the stored status is returned by GetStatus "
        "without refresh");
  }
  if (!report->found) return transaction;
  absl::StatusOr<store::ApplyResult> applied = ApplyNews(
      transaction.merchant_transaction_id(), NewsOfReport(*report, v1::EVENT_SOURCE_RECONCILER));
  if (!applied.ok()) return applied.status();
  return applied->transaction;
}

absl::StatusOr<v1::Transaction> PaymentService::Reconcile(
    const std::string& merchant_transaction_id, absl::Time deadline,
    absl::Duration not_found_grace) {
  absl::StatusOr<v1::Transaction> transaction = store_.Get(merchant_transaction_id);
  if (!transaction.ok() || core::IsFinal(transaction->status())) return transaction;
  absl::StatusOr<gateway::Connector> connector = ConnectorOf(*transaction);
  if (!connector.ok()) return connector.status();
  if (absl::Status quota =
          TakeStatusQuery(core::PriorityOf(*transaction, config_.schedule, absl::Now()));
      !quota.ok()) {
    return quota;
  }
  // By merchantTransactionId: an UNKNOWN transaction may have no uuid yet.
  absl::StatusOr<gateway::StatusReport> report =
      gateway_.StatusByMerchantTransactionId(*connector, merchant_transaction_id, deadline);
  if (!report.ok()) return report.status();
  GatewayNews news = NewsOfReport(*report, v1::EVENT_SOURCE_RECONCILER);
  news.ends_flight = true;
  if (!report->found) {
    const absl::Time created = absl::FromUnixSeconds(transaction->created_at().seconds());
    if (transaction->status() != v1::TRANSACTION_STATUS_UNKNOWN ||
        absl::Now() - created < not_found_grace) {
      // Too early to conclude anything: the status stays, and the plan schedules the next look.
      GatewayNews nothing_new;
      nothing_new.status = transaction->status();
      nothing_new.source = v1::EVENT_SOURCE_RECONCILER;
      absl::StatusOr<store::ApplyResult> applied = ApplyNews(merchant_transaction_id, nothing_new);
      if (!applied.ok()) return applied.status();
      return applied->transaction;
    }
    // Bankart has never heard of it: the request never arrived, nothing was created. Only now may
    // the caller try again, under a new id.
    news.status = v1::TRANSACTION_STATUS_ERROR;
    news.error =
        gateway::GatewayError{8001,
                              "the gateway has no such transaction: the request never reached it "
                              "and nothing was created; retry under a new merchant_transaction_id",
                              "", ""};
  }
  absl::StatusOr<store::ApplyResult> applied = ApplyNews(merchant_transaction_id, news);
  if (!applied.ok()) return applied.status();
  if (applied->status_changed) metrics_.reconciler_resolved.Increment();
  return applied->transaction;
}

absl::StatusOr<store::ApplyResult> PaymentService::ApplyNews(const std::string& id,
                                                             const GatewayNews& news,
                                                             HandledMark* mark, RecordCheck check) {
  store::Report report;
  report.status = news.status;
  report.source = news.source;
  report.ends_flight = news.ends_flight;
  report.fill = [&news](v1::Transaction& t) {
    if (t.gateway_uuid().empty()) t.set_gateway_uuid(news.uuid);
    if (t.purchase_id().empty()) t.set_purchase_id(news.purchase_id);
    if (t.adapter_reference_id().empty()) {
      t.set_adapter_reference_id(news.adapter_reference_id);
    }
    // The error explains how the transaction ended; a final one keeps its own.
    if (news.error.has_value() && !t.has_error() && !core::IsFinal(t.status())) {
      SetError(t, *news.error);
    }
  };
  return ApplyReport(id, std::move(report), mark, std::move(check));
}

absl::StatusOr<store::ApplyResult> PaymentService::ApplyReport(const std::string& id,
                                                               store::Report report,
                                                               HandledMark* mark,
                                                               RecordCheck check) {
  report.schedule = config_.schedule;
  absl::StatusOr<store::ApplyResult> applied;
  if (mark == nullptr && !check) {
    applied = store_.Apply(id, report);
  } else {
    store::CallbackApply callback;
    callback.check = std::move(check);
    if (mark != nullptr) {
      callback.signature = mark->signature;
      callback.mark_ttl = mark->ttl;
    }
    applied = store_.ApplyCallback(id, report, callback);
    if (mark != nullptr && applied.ok()) mark->written = true;
  }
  if (cache_ != nullptr) {
    // This replica's own callers read their writes at once, before the hub reads the stream. (A
    // failed Apply may still have stored the change, e.g. short of replicas: forget it too. A
    // refund's debit, unknown then, is forgotten when the hub reads the refund's event.)
    cache_->Invalidate(id);
    if (applied.ok() && !applied->transaction.original_merchant_transaction_id().empty()) {
      cache_->Invalidate(applied->transaction.original_merchant_transaction_id());
    }
  }
  if (!applied.ok()) {
    if (absl::IsUnavailable(applied.status())) metrics_.store_unavailable.Increment();
    return applied;
  }
  if (applied->status_changed) {
    metrics_.status_changes.Increment();
    // The RPC's own answer to a claim flikpay just stored is the transaction's first status.
    metrics_.CountTransition(applied->previous_status, applied->transaction.status(),
                             report.source == v1::EVENT_SOURCE_RPC &&
                                 applied->previous_status == v1::TRANSACTION_STATUS_UNKNOWN);
  }
  if (applied->anomaly) {
    metrics_.status_anomalies.Increment();
    Log(LogLevel::kWarning, "anomaly: %s says %s for %s, which is already %s; kept in history only",
        v1::EventSource_Name(report.source), v1::TransactionStatus_Name(report.status), id,
        v1::TransactionStatus_Name(applied->transaction.status()));
  }
  return applied;
}

absl::Status PaymentService::HandleCallback(const gateway::InboundCallback& callback,
                                            CallbackOutcome* outcome) {
  CallbackOutcome judged;
  absl::Status handled = JudgeCallback(callback, judged);
  metrics_.CountCallback(judged.result);
  if (outcome != nullptr) *outcome = std::move(judged);
  return handled;
}

absl::Status PaymentService::JudgeCallback(const gateway::InboundCallback& callback,
                                           CallbackOutcome& outcome) {
  absl::StatusOr<gateway::CallbackEvent> event = gateway_.VerifyCallback(callback);
  if (!event.ok()) {
    switch (gateway::RefusalOf(event.status())) {
      case gateway::CallbackRefusal::kStale:
        outcome.result = CallbackResult::kStale;
        break;
      case gateway::CallbackRefusal::kBadSignature:
        outcome.result = CallbackResult::kBadSignature;
        break;
      case gateway::CallbackRefusal::kMalformed:
        outcome.result = CallbackResult::kMalformed;
        break;
    }
    // Why it was refused is for the log; the sender learns only that it was.
    // At debug level: a flood of forged callbacks must not flood the log (the counter counts).
    Log(LogLevel::kDebug, "callback refused: %s", event.status().message());
    if (absl::IsUnauthenticated(event.status())) {
      return absl::UnauthenticatedError("invalid signature");
    }
    return absl::InvalidArgumentError("malformed callback");
  }
  const absl::Status retry_later = absl::UnavailableError("storage unavailable, retry later");
  // A verified callback is handled once: a replay of the same signed bytes is acknowledged and
  // changes nothing (each replay of a contradicting callback would otherwise add to the history).
  const std::optional<std::string> signature = SignatureOf(callback);
  if (signature.has_value()) {
    absl::StatusOr<store::Sighting> sighting = store_.SightCallback(
        *signature, std::min(kCallbackHandlingLease, config_.callback_replay_window));
    if (!sighting.ok()) {
      metrics_.store_unavailable.Increment();
      return retry_later;
    }
    switch (*sighting) {
      case store::Sighting::kFirst:
        break;
      case store::Sighting::kHandled:
        // Answered 200 only once what handling it first stored is durable (the store waits for
        // its replicas, if any): otherwise 503, and Bankart sends it again.
        outcome.result = CallbackResult::kReplay;
        return absl::OkStatus();
      case store::Sighting::kHandling:
        // The first delivery's outcome is not stored, perhaps not durable, yet: a 200 now would
        // acknowledge what a failover could still lose.
        outcome.result = CallbackResult::kRetryLater;
        return absl::UnavailableError("the same callback is being handled, retry later");
    }
  }
  // Marked handled with the outcome it stores, in the same atomic step: a racing delivery of the
  // same bytes sees "handling" (503) until then.
  std::optional<HandledMark> mark;
  if (signature.has_value()) {
    mark = HandledMark{.signature = *signature, .ttl = config_.callback_replay_window};
  }
  absl::Status handled =
      HandleVerifiedCallback(callback, *event, outcome, mark.has_value() ? &*mark : nullptr);
  if (!signature.has_value()) return handled;
  if (absl::IsUnavailable(handled)) {
    // Not handled: Bankart's retry of these very bytes must be (a mark written with an outcome
    // that is not yet durable goes too).
    if (!store_.ForgetSighting(*signature).ok()) metrics_.store_unavailable.Increment();
  } else if (!mark->written &&
             !store_.MarkCallbackHandled(*signature, config_.callback_replay_window).ok()) {
    // Handled with no Apply that wrote the mark (an unknown transaction, kept for inspection; a
    // portal refund that does not match its debit): the mark on its own.
    // Handled all the same; until the claim's lease ends a repeat is answered 503, then handled
    // again as after an outage.
    metrics_.store_unavailable.Increment();
  }
  return handled;
}

absl::Status PaymentService::HandleVerifiedCallback(const gateway::InboundCallback& callback,
                                                    const gateway::CallbackEvent& verified,
                                                    CallbackOutcome& outcome, HandledMark* mark) {
  // Every way out but these is a store failure: answered 503, and Bankart retries.
  outcome.result = CallbackResult::kRetryLater;
  const gateway::CallbackEvent* event = &verified;
  const absl::Status retry_later = absl::UnavailableError("storage unavailable, retry later");
  std::string id = event->merchant_transaction_id;
  if (id.empty()) {
    absl::StatusOr<std::string> found = store_.FindByGatewayUuid(event->uuid);
    if (found.ok()) {
      id = *found;
    } else if (!absl::IsNotFound(found.status())) {
      metrics_.store_unavailable.Increment();
      return retry_later;
    }
  }
  outcome.merchant_transaction_id = id;
  GatewayNews news;
  news.status = StatusOfCallback(*event);
  news.source = v1::EVENT_SOURCE_CALLBACK;
  news.uuid = event->uuid;
  news.purchase_id = event->purchase_id;
  news.adapter_reference_id = event->adapter_reference_id;
  if (event->result == gateway::CallbackEvent::Result::kError) {
    news.error = DecisiveError(event->errors);
  }
  // Judged against the record as Apply reads it (no read of its own): a callback that cannot be
  // about it is only recorded there, refused.
  absl::StatusOr<store::ApplyResult> applied =
      id.empty() || event->type == gateway::TransactionType::kOther
          ? absl::NotFoundError("not a transaction flikpay started")
          : ApplyNews(id, news, mark,
                      [this, event](const v1::Transaction& stored) -> absl::StatusOr<std::string> {
                        absl::StatusOr<std::string> why = CallbackMismatch(stored, *event);
                        // A refund's debit gone is no unknown transaction: answered 503.
                        if (absl::IsNotFound(why.status())) {
                          return absl::InternalError(why.status().message());
                        }
                        return why;
                      });
  if (applied.ok() && !applied->refused_because.empty()) {
    Log(LogLevel::kWarning, "callback for %s refused, it does not match the transaction: %s", id,
        applied->refused_because);
    // Bankart retries anything but 200 "OK" (GATEWAY.md): a callback that cannot be about this
    // transaction is not acknowledged, and each retry is recorded (and counted) the same way.
    outcome.result = CallbackResult::kMismatch;
    return absl::InvalidArgumentError("the callback does not match its transaction");
  }
  if (absl::IsNotFound(applied.status()) && event->type == gateway::TransactionType::kRefund) {
    // A refund flikpay never sent: made in Bankart's portal (seed 000, "Refund with/without
    // Postback"). It still counts against its debit's cap.
    absl::StatusOr<std::string> recorded = RecordPortalRefund(*event);
    if (absl::IsFailedPrecondition(recorded.status())) {
      outcome.result = CallbackResult::kMismatch;
      Log(LogLevel::kWarning, "refund callback %s refused: %s", event->uuid,
          recorded.status().message());
      return absl::InvalidArgumentError("the callback does not match its transaction");
    }
    if (!recorded.ok() && !absl::IsNotFound(recorded.status())) {
      if (absl::IsUnavailable(recorded.status())) return retry_later;
      Log(LogLevel::kWarning, "refund callback %s for a known debit not recorded: %s", event->uuid,
          recorded.status().message());
    }
    if (recorded.ok()) {
      outcome.merchant_transaction_id = *recorded;
      applied = ApplyNews(*recorded, news, mark);
    }
  }
  if (absl::IsNotFound(applied.status())) {
    if (!store_.RecordUnmatchedCallback(callback.body).ok()) {
      metrics_.store_unavailable.Increment();
      return retry_later;
    }
    outcome.result = CallbackResult::kUnknownTransaction;
    return absl::OkStatus();
  }
  if (!applied.ok()) return retry_later;
  outcome.result = applied->status_changed ? CallbackResult::kAccepted : CallbackResult::kDuplicate;
  outcome.status = v1::TransactionStatus_Name(applied->transaction.status());
  return absl::OkStatus();
}

absl::StatusOr<std::string> PaymentService::CallbackMismatch(const v1::Transaction& transaction,
                                                             const gateway::CallbackEvent& event) {
  if (event.connector.has_value()) {
    absl::StatusOr<gateway::Connector> connector = ConnectorOf(transaction);
    if (!connector.ok()) return connector.status();
    if (*connector != *event.connector) {
      return absl::StrCat("signed with the ", gateway::ConnectorName(*event.connector),
                          " connector's secret, the transaction is ",
                          gateway::ConnectorName(*connector), "'s");
    }
  }
  if (ApiType(event.type) != transaction.type()) {
    return absl::StrCat("a ", gateway::TransactionTypeName(event.type), " callback for a ",
                        v1::TransactionType_Name(transaction.type()));
  }
  if (event.amount_minor.has_value() && *event.amount_minor != transaction.amount_minor()) {
    return absl::StrCat("amount ", *event.amount_minor, " cents, the transaction's is ",
                        transaction.amount_minor());
  }
  if (!event.currency.empty() && event.currency != transaction.currency()) {
    return absl::StrCat("currency ", event.currency, ", the transaction's is ",
                        transaction.currency());
  }
  if (!event.uuid.empty() && !transaction.gateway_uuid().empty() &&
      event.uuid != transaction.gateway_uuid()) {
    return absl::StrCat("uuid ", event.uuid, ", the transaction's is ", transaction.gateway_uuid());
  }
  return std::string();
}

absl::StatusOr<std::string> PaymentService::RecordPortalRefund(
    const gateway::CallbackEvent& event) {
  std::string reference_uuid = event.reference_uuid;
  if (reference_uuid.empty() && !event.uuid.empty()) {
    // The callback does not name the debit: the status API does. Which connector the refund was
    // made on is unknown here; the debit's kinds each have their own, so ask each.
    // A refund is of a debit: only the debit connectors can know it.
    for (gateway::Connector connector :
         {gateway::Connector::kEcommerce, gateway::Connector::kInPerson,
          gateway::Connector::kOutOfBand}) {
      if (absl::Status quota = TakeStatusQuery(core::QueryPriority::kCallerRefresh); !quota.ok()) {
        // Answered 503: Bankart retries the callback later, when the quota has room.
        return absl::UnavailableError(quota.message());
      }
      absl::StatusOr<gateway::StatusReport> report =
          gateway_.StatusByUuid(connector, event.uuid, absl::Now() + absl::Seconds(5));
      if (report.ok() && report->found && !report->reference_uuid.empty()) {
        reference_uuid = report->reference_uuid;
        break;
      }
    }
  }
  if (reference_uuid.empty()) return absl::NotFoundError("the refund names no debit");
  if (event.amount_minor.value_or(0) <= 0) {
    return absl::InvalidArgumentError("the refund has no amount");
  }
  absl::StatusOr<std::string> original = store_.FindByGatewayUuid(reference_uuid);
  if (!original.ok()) return original.status();
  absl::StatusOr<v1::Transaction> debit = store_.Get(*original);
  if (!debit.ok()) return debit.status();
  if (debit->type() != v1::TRANSACTION_TYPE_DEBIT) {
    return absl::NotFoundError("the refund's reference is not a debit of flikpay's");
  }
  if (event.connector.has_value()) {
    absl::StatusOr<gateway::Connector> connector = ConnectorOf(*debit);
    if (!connector.ok()) return connector.status();
    if (*connector != *event.connector) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a refund of ", *original, " signed with the ", gateway::ConnectorName(*event.connector),
          " connector's secret, the debit is ", gateway::ConnectorName(*connector), "'s"));
    }
  }
  const std::string id = event.merchant_transaction_id.empty()
                             ? absl::StrCat("portal-refund-", event.uuid)
                             : event.merchant_transaction_id;
  v1::Transaction refund = NewRecord(id, v1::TRANSACTION_TYPE_REFUND, *event.amount_minor,
                                     "refund made in Bankart's portal");
  refund.set_original_merchant_transaction_id(*original);
  // The debit's owner sees the refund Bankart made of it.
  refund.set_created_by(debit->created_by());
  const absl::Time now = absl::Now();
  absl::StatusOr<store::BeginResult> claimed = store_.BeginRefund(
      refund, "portal", now, config_.schedule.FirstCheck(now), store::RefundCap::kRecordBeyond);
  if (!claimed.ok()) return claimed.status();
  if (claimed->created) metrics_.portal_refunds.Increment();
  if (claimed->beyond_cap) {
    // Bankart refunded more than flikpay believed was left (or a debit flikpay has not seen
    // succeed): the money moved, so the record follows Bankart; someone should look.
    metrics_.status_anomalies.Increment();
    Log(LogLevel::kWarning,
        "anomaly: refund %s made in Bankart's portal exceeds what flikpay held refundable of %s",
        id, *original);
  }
  return id;
}

}  // namespace flikpay::server
