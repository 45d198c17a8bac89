// Bankart's callbacks as seed 001's signing example dates them (PHP's "D, d M Y H:i:s T" in UTC:
// "... UTC") and with a numeric zone ("... +0000"): every seed scenario still ends in its status by
// callback, not by the rate-limited polling a rejected callback would leave. GMT, the stand-in's
// default, is what every other e2e test runs with.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

// A suite whose stand-in dates its callbacks in `form`.
template <const char* form>
class CallbackDateTest : public ::flikpay::testing::E2eTest {
 public:
  static void SetUpTestSuite() {
    sim_flags_ = {std::string("--callback_date_format=") + form};
    E2eTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    E2eTest::TearDownTestSuite();
    sim_flags_.clear();
  }
};

constexpr char kUtc[] = "utc";
constexpr char kNumeric[] = "numeric";
using UtcDatedCallbacksTest = CallbackDateTest<kUtc>;
using NumericZoneCallbacksTest = CallbackDateTest<kNumeric>;

TEST_F(UtcDatedCallbacksTest, EverySeedScenarioEndsInItsStatusByCallback) {
  ExpectEverySeedScenario();
}

TEST_F(NumericZoneCallbacksTest, EverySeedScenarioEndsInItsStatusByCallback) {
  ExpectEverySeedScenario();
}

}  // namespace
}  // namespace flikpay
