// libFuzzer target for everything flikpay reads from Bankart: debit/refund/payout answers, status
// answers and callback bodies (JSON and XML). The first byte picks the parser (and the HTTP status
// a submit answer came with); the rest is the body. Anything but a clean return — a crash, an
// exception, a sanitizer report — is a finding. scripts/test.sh runs it for a bounded time.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "gateway/bankart_answers.h"
#include "gateway/callback_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      const int http_status = 200 + (data[0] / 3) % 400;  // 200 to 599
      const flikpay::gateway::SubmitOutcome outcome =
          flikpay::gateway::ParseSubmitAnswer(http_status, body);
      // Accepted is only ever read from a 2xx answer.
      if (outcome.kind == flikpay::gateway::SubmitOutcome::Kind::kAccepted && http_status >= 300) {
        __builtin_trap();
      }
      break;
    }
    case 1:
      flikpay::gateway::ParseStatusAnswer(body).status().IgnoreError();
      break;
    default:
      flikpay::gateway::ParseCallbackBody(body).status().IgnoreError();
      break;
  }
  return 0;
}
