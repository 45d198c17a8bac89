// libFuzzer target for callback bodies (gateway/callback_parser.h), built twice: callback_json_fuzz
// and callback_xml_fuzz differ only in their seeds and dictionaries, so each corpus grows towards
// its own format. The input is a body as received (the signature is checked before, but a
// connector's secret can leak, so the parser gets no trust either). Besides a clean return, an
// accepted callback must hold what the service relies on without checking again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/callback_parser.h"
#include "gateway/money.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using flikpay::gateway::CallbackEvent;

bool Trimmed(absl::string_view text) { return absl::StripAsciiWhitespace(text) == text; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<CallbackEvent> event = flikpay::gateway::ParseCallbackBody(body);
  auto shown = [&] { return absl::StrCat("body \"", absl::CEscape(body.substr(0, 400)), "\""); };
  if (!event.ok()) {
    FUZZ_CHECK(event.status().code() == absl::StatusCode::kInvalidArgument,
               absl::StrCat(shown(), ": ", event.status().ToString()));
    return 0;
  }
  // Matched to a transaction by one of these ids, so one must be there, and as stored (no spaces).
  FUZZ_CHECK(!event->uuid.empty() || !event->merchant_transaction_id.empty(), shown());
  FUZZ_CHECK(Trimmed(event->uuid) && Trimmed(event->merchant_transaction_id) &&
                 Trimmed(event->reference_uuid) && Trimmed(event->adapter_reference_id),
             shown());
  FUZZ_CHECK(!event->raw_type.empty(), shown());
  FUZZ_CHECK(!event->connector.has_value(), absl::StrCat(shown(), ": only a signature names one"));
  if (event->amount_minor.has_value()) {
    FUZZ_CHECK(*event->amount_minor >= 0, absl::StrCat(shown(), " -> ", *event->amount_minor));
    const absl::StatusOr<int64_t> again =
        flikpay::gateway::ParseAmount(flikpay::gateway::FormatAmount(*event->amount_minor));
    FUZZ_CHECK(again.ok() && *again == *event->amount_minor, shown());
  }
  if (event->card.has_value()) {
    FUZZ_CHECK(
        event->card->auth_code.size() <= 6,
        absl::StrCat(shown(), ": auth code \"", absl::CEscape(event->card->auth_code), "\""));
  }
  return 0;
}
