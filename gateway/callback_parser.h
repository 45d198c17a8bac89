#ifndef FLIKPAY_GATEWAY_CALLBACK_PARSER_H_
#define FLIKPAY_GATEWAY_CALLBACK_PARSER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/gateway.h"
#include "gateway/json_reader.h"
#include "nlohmann/json.hpp"

namespace flikpay::gateway {

// Parses a callback body: JSON (API v3, and the v2 JSON of seed 003) or the XML v2 <callback> of
// seeds 001/003. Signature checking is the caller's job; this only reads. INVALID_ARGUMENT names
// what is missing or malformed.
absl::StatusOr<CallbackEvent> ParseCallbackBody(absl::string_view body);

// Bankart's error lists come in two spellings (errorCode/errorMessage in API answers, code/message
// in callbacks and status answers); both are read. A top-level errorCode/errorMessage (or
// code/message) is read as one more entry.
// Every value's type is checked (JsonReader): a mismatch shows in `object.status()`.
std::vector<GatewayError> ParseGatewayErrors(JsonReader& object);

// The string value of a JSON member that may be a string or a number; "" when absent. Lenient, for
// JSON flikpay trusts (the stand-in's journal in tests); never for what the gateway sends.
std::string JsonText(const nlohmann::json& object, absl::string_view key);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_CALLBACK_PARSER_H_
