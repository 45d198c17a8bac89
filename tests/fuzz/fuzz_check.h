#ifndef FLIKPAY_TESTS_FUZZ_FUZZ_CHECK_H_
#define FLIKPAY_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

// A broken property is a finding like a crash: abort() makes libFuzzer save the input, and the
// message says which property and with what values (absl::CEscape them: inputs are any bytes).
#define FUZZ_CHECK(condition, detail)                                 \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "property failed: %s\n  %s\n", #condition, \
                   std::string(detail).c_str());                      \
      std::abort();                                                   \
    }                                                                 \
  } while (0)

#endif  // FLIKPAY_TESTS_FUZZ_FUZZ_CHECK_H_
