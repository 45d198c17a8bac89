// A private redis-server on a free loopback port, for the tests of RedisStore itself (the e2e
// fixture starts its own, beside the servers). Header-only: the store tests need nothing else of
// the e2e support.
#ifndef FLIKPAY_TESTS_SUPPORT_TEST_REDIS_H_
#define FLIKPAY_TESTS_SUPPORT_TEST_REDIS_H_

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/process.h"

namespace flikpay::testing {

struct TestRedis {
  std::unique_ptr<ChildProcess> process;
  int port = 0;
};

// Starts `redis_server` with `extra_args` (no persistence). Redis cannot pick its own port and
// tell us, so a free one is probed first; a test running alongside may take it in between, and
// then another one is tried.
inline absl::StatusOr<TestRedis> StartTestRedis(const std::string& redis_server,
                                                const std::vector<std::string>& extra_args = {}) {
  absl::Status failure = absl::UnavailableError("redis-server was not started");
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int port = FreeLoopbackPort();
    std::vector<std::string> argv = {redis_server, "--port",       std::to_string(port),
                                     "--bind",     "127.0.0.1",    "--save",
                                     "",           "--appendonly", "no"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    std::string line;
    absl::StatusOr<std::unique_ptr<ChildProcess>> process =
        ChildProcess::Start(std::move(argv), "Ready to accept connections", &line);
    if (process.ok()) return TestRedis{*std::move(process), port};
    failure = process.status();
  }
  return failure;
}

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_TEST_REDIS_H_
