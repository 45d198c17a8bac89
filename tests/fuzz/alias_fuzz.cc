// libFuzzer target for Flik alias normalisation and masking (gateway/alias.h). The input is a raw
// alias as a caller sends it. An accepted alias must come out in the one form the scheme registers,
// normalising it again must change nothing (flikpay stores and compares the normalised form, so a
// second pass that moved it would split one payer in two), and its mask must hide it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/alias.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using flikpay::gateway::Alias;
using flikpay::gateway::AliasKind;
using flikpay::gateway::MaskAlias;
using flikpay::gateway::NormalizeAlias;

bool IsRegisteredPhone(absl::string_view value) {
  if (value.size() != 13 || !absl::StartsWith(value, "00386")) return false;
  for (char c : value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view raw(reinterpret_cast<const char*>(data), size);
  auto shown = [&] { return absl::StrCat("\"", absl::CEscape(raw), "\""); };
  MaskAlias(raw);  // also reached with what was never validated, e.g. in a log line

  const absl::StatusOr<Alias> alias = NormalizeAlias(raw);
  if (!alias.ok()) {
    FUZZ_CHECK(alias.status().code() == absl::StatusCode::kInvalidArgument,
               absl::StrCat(shown(), ": ", alias.status().ToString()));
    return 0;
  }
  if (alias->kind == AliasKind::kPhone) {
    FUZZ_CHECK(IsRegisteredPhone(alias->value), absl::StrCat(shown(), " -> ", alias->value));
  } else {
    FUZZ_CHECK(alias->value == raw && raw.size() <= 254,
               absl::StrCat(shown(), " -> \"", absl::CEscape(alias->value), "\""));
  }

  const absl::StatusOr<Alias> again = NormalizeAlias(alias->value);
  FUZZ_CHECK(again.ok() && again->kind == alias->kind && again->value == alias->value,
             absl::StrCat(shown(), " -> \"", absl::CEscape(alias->value), "\" -> ",
                          again.ok() ? absl::StrCat("\"", absl::CEscape(again->value), "\"")
                                     : again.status().ToString()));

  const std::string mask = MaskAlias(alias->value);
  FUZZ_CHECK(mask != alias->value && absl::StrContains(mask, "***"),
             absl::StrCat(shown(), " masked as \"", absl::CEscape(mask), "\""));
  return 0;
}
