// The stored forms of a transaction and of a status event (flikpay.storage.v1) and the conversion
// to and from the API's messages, done only at the store's edge so the two can evolve apart.
#ifndef FLIKPAY_STORE_RECORD_CODEC_H_
#define FLIKPAY_STORE_RECORD_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "flikpay/storage/v1/record.pb.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::store {

storage::v1::TransactionRecord ToRecord(const flikpay::v1::Transaction& transaction);
flikpay::v1::Transaction FromRecord(const storage::v1::TransactionRecord& record);

// The bytes kept in Redis. The refunded amount is not part of them: it is kept beside the record
// and changes without it.
std::string EncodeRecord(const flikpay::v1::Transaction& transaction);
// DATA_LOSS when the bytes are not a record.
absl::StatusOr<flikpay::v1::Transaction> DecodeRecord(absl::string_view bytes);

// An event as the stream keeps it (storage::v1::EventRecord), and back with its entry id as cursor.
std::string EncodeEvent(const flikpay::v1::StatusEvent& event);
// DATA_LOSS when the bytes are not an event.
absl::StatusOr<flikpay::v1::StatusEvent> DecodeEvent(absl::string_view bytes,
                                                     absl::string_view cursor);

}  // namespace flikpay::store

#endif  // FLIKPAY_STORE_RECORD_CODEC_H_
