// "host:port" as the listen flags and the processes' start-up lines write it.
#ifndef FLIKPAY_CORE_ADDRESS_H_
#define FLIKPAY_CORE_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flikpay::core {

struct HostPort {
  std::string host;  // may be empty (every interface) or a bracketed IPv6 address
  int port = 0;      // 0: any free port
};

// Splits at the last ':'; the port is a number from 0 to 65535. INVALID_ARGUMENT saying what is
// wrong otherwise.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_ADDRESS_H_
