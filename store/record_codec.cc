#include "store/record_codec.h"

#include "absl/status/status.h"

namespace flikpay::store {
namespace {

namespace api = ::flikpay::v1;
namespace stored = ::flikpay::storage::v1;

// The enums share their numbers (record.proto); a value one side does not know becomes UNSPECIFIED
// instead of an out-of-range enum.
template <typename To, typename From>
To Convert(From value, bool (*is_valid)(int)) {
  const int number = static_cast<int>(value);
  return is_valid(number) ? static_cast<To>(number) : To{};
}

stored::RecordStatus ToRecord(api::TransactionStatus status) {
  return Convert<stored::RecordStatus>(status, stored::RecordStatus_IsValid);
}
api::TransactionStatus FromRecord(stored::RecordStatus status) {
  return Convert<api::TransactionStatus>(status, api::TransactionStatus_IsValid);
}
stored::RecordSource ToRecord(api::EventSource source) {
  return Convert<stored::RecordSource>(source, stored::RecordSource_IsValid);
}
api::EventSource FromRecord(stored::RecordSource source) {
  return Convert<api::EventSource>(source, api::EventSource_IsValid);
}

}  // namespace

stored::TransactionRecord ToRecord(const api::Transaction& t) {
  stored::TransactionRecord r;
  r.set_merchant_transaction_id(t.merchant_transaction_id());
  r.set_gateway_uuid(t.gateway_uuid());
  r.set_purchase_id(t.purchase_id());
  r.set_type(Convert<stored::RecordType>(t.type(), stored::RecordType_IsValid));
  r.set_kind(Convert<stored::RecordKind>(t.kind(), stored::RecordKind_IsValid));
  r.set_status(ToRecord(t.status()));
  r.set_amount_minor(t.amount_minor());
  r.set_currency(t.currency());
  r.set_redirect_url(t.redirect_url());
  if (t.has_expires_at()) *r.mutable_expires_at() = t.expires_at();
  if (t.has_created_at()) *r.mutable_created_at() = t.created_at();
  if (t.has_updated_at()) *r.mutable_updated_at() = t.updated_at();
  if (t.has_error()) {
    stored::RecordError* error = r.mutable_error();
    error->set_code(t.error().code());
    error->set_message(t.error().message());
    error->set_adapter_code(t.error().adapter_code());
    error->set_adapter_message(t.error().adapter_message());
    error->set_payer_message(t.error().payer_message());
  }
  r.set_alias(t.alias());
  r.set_original_merchant_transaction_id(t.original_merchant_transaction_id());
  r.set_adapter_reference_id(t.adapter_reference_id());
  r.set_version(t.version());
  for (const api::StatusChange& change : t.history()) {
    stored::RecordChange* out = r.add_history();
    if (change.has_at()) *out->mutable_at() = change.at();
    out->set_from(ToRecord(change.from()));
    out->set_to(ToRecord(change.to()));
    out->set_source(ToRecord(change.source()));
    out->set_note(change.note());
  }
  r.set_description(t.description());
  r.set_created_by(t.created_by());
  r.set_request_id(t.request_id());
  return r;
}

api::Transaction FromRecord(const stored::TransactionRecord& r) {
  api::Transaction t;
  t.set_merchant_transaction_id(r.merchant_transaction_id());
  t.set_gateway_uuid(r.gateway_uuid());
  t.set_purchase_id(r.purchase_id());
  t.set_type(Convert<api::TransactionType>(r.type(), api::TransactionType_IsValid));
  t.set_kind(Convert<api::RtpKind>(r.kind(), api::RtpKind_IsValid));
  t.set_status(FromRecord(r.status()));
  t.set_amount_minor(r.amount_minor());
  t.set_currency(r.currency());
  t.set_redirect_url(r.redirect_url());
  if (r.has_expires_at()) *t.mutable_expires_at() = r.expires_at();
  if (r.has_created_at()) *t.mutable_created_at() = r.created_at();
  if (r.has_updated_at()) *t.mutable_updated_at() = r.updated_at();
  if (r.has_error()) {
    api::TransactionError* error = t.mutable_error();
    error->set_code(r.error().code());
    error->set_message(r.error().message());
    error->set_adapter_code(r.error().adapter_code());
    error->set_adapter_message(r.error().adapter_message());
    error->set_payer_message(r.error().payer_message());
  }
  t.set_alias(r.alias());
  t.set_original_merchant_transaction_id(r.original_merchant_transaction_id());
  t.set_adapter_reference_id(r.adapter_reference_id());
  t.set_version(r.version());
  for (const stored::RecordChange& change : r.history()) {
    api::StatusChange* out = t.add_history();
    if (change.has_at()) *out->mutable_at() = change.at();
    out->set_from(FromRecord(change.from()));
    out->set_to(FromRecord(change.to()));
    out->set_source(FromRecord(change.source()));
    out->set_note(change.note());
  }
  t.set_description(r.description());
  t.set_created_by(r.created_by());
  t.set_request_id(r.request_id());
  return t;
}

std::string EncodeRecord(const api::Transaction& transaction) {
  return ToRecord(transaction).SerializeAsString();
}

absl::StatusOr<api::Transaction> DecodeRecord(absl::string_view bytes) {
  stored::TransactionRecord record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("stored transaction record is unreadable");
  }
  return FromRecord(record);
}

std::string EncodeEvent(const api::StatusEvent& event) {
  stored::EventRecord record;
  *record.mutable_transaction() = ToRecord(event.transaction());
  record.set_previous_status(ToRecord(event.previous_status()));
  record.set_source(ToRecord(event.source()));
  if (event.has_occurred_at()) *record.mutable_occurred_at() = event.occurred_at();
  return record.SerializeAsString();
}

absl::StatusOr<api::StatusEvent> DecodeEvent(absl::string_view bytes, absl::string_view cursor) {
  stored::EventRecord record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("stored event is unreadable");
  }
  api::StatusEvent event;
  event.set_cursor(std::string(cursor));
  *event.mutable_transaction() = FromRecord(record.transaction());
  event.set_previous_status(FromRecord(record.previous_status()));
  event.set_source(FromRecord(record.source()));
  if (record.has_occurred_at()) *event.mutable_occurred_at() = record.occurred_at();
  return event;
}

}  // namespace flikpay::store
