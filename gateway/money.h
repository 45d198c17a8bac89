#ifndef FLIKPAY_GATEWAY_MONEY_H_
#define FLIKPAY_GATEWAY_MONEY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flikpay::gateway {

// Inside flikpay money is an integer number of euro cents; Bankart speaks decimal strings with a
// dot and at most two decimals. These two functions are the only place the two meet.

// 1111 -> "11.11", 5 -> "0.05". Negative amounts are formatted with a leading '-'.
std::string FormatAmount(int64_t amount_minor);

// "11.11" -> 1111, "11.1" -> 1110, "11" -> 1100. Rejects signs, exponents, spaces, more than two
// decimals and values that do not fit in int64 cents.
absl::StatusOr<int64_t> ParseAmount(absl::string_view text);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_MONEY_H_
