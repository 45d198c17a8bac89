// A test suite with one bankart-sim process on a free loopback port, started once for the suite and
// stopped with a check that it exited cleanly (under the sanitizers a leak or UB report makes the
// exit non-zero).
#ifndef FLIKPAY_TESTS_SUPPORT_SIM_SUITE_H_
#define FLIKPAY_TESTS_SUPPORT_SIM_SUITE_H_

#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace flikpay::testing {

// `Flags` supplies, as a static `Flags()`, what the suite's stand-in runs with after
// `--listen=127.0.0.1:0`.
template <typename Flags>
class SimSuite : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    std::vector<std::string> args = {BANKART_SIM_PATH, "--listen=127.0.0.1:0"};
    for (const std::string& flag : Flags::Flags()) args.push_back(flag);
    std::string line;
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start(std::move(args), "listening on", &line);
    ASSERT_TRUE(child.ok()) << child.status();
    sim_ = *std::move(child);
    port_ = PortFromLine(line);
  }
  static void TearDownTestSuite() {
    if (sim_ == nullptr) return;
    const int status = sim_->Stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "bankart-sim status " << status;
    sim_.reset();
  }

 protected:
  void SetUp() override { ASSERT_NE(sim_, nullptr); }

  static inline std::unique_ptr<ChildProcess> sim_;
  static inline int port_ = 0;
};

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_SIM_SUITE_H_
