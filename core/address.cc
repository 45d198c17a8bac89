#include "core/address.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace flikpay::core {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  HostPort parsed;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &parsed.port) || parsed.port < 0 ||
      parsed.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("not host:port with a port from 0 to 65535: ", address));
  }
  parsed.host = std::string(address.substr(0, colon));
  return parsed;
}

}  // namespace flikpay::core
