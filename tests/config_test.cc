// One source of configuration: every server flag can be set from the environment (Kubernetes sets
// nothing else), a bad value stops the start naming the variable, and the README documents each
// variable.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/flags.h"

namespace flikpay::server {
namespace {

class FakeEnvironment {
 public:
  void Set(const std::string& name, const std::string& value) { values_[name] = value; }
  Getenv getenv() const {
    return [this](const char* name) -> const char* {
      auto it = values_.find(name);
      return it == values_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> values_;
};

// A valid value unlike the default, written the way the flag prints it, so the flag's current value
// can be compared as text.
std::string ValueUnlikeDefault(const absl::CommandLineFlag& flag) {
  const std::string fallback = flag.DefaultValue();
  if (flag.IsOfType<absl::Duration>()) {
    absl::Duration duration;
    EXPECT_TRUE(absl::ParseDuration(fallback, &duration)) << flag.Name();
    return absl::FormatDuration(duration + absl::Seconds(7));
  }
  if (flag.IsOfType<bool>()) return fallback == "true" ? "false" : "true";
  if (flag.IsOfType<int64_t>() || flag.IsOfType<int32_t>()) {
    int64_t number = 0;
    EXPECT_TRUE(absl::SimpleAtoi(fallback, &number)) << flag.Name();
    return absl::StrCat(number + 7);
  }
  if (flag.IsOfType<std::optional<int32_t>>()) return fallback.empty() ? "3" : "";
  EXPECT_TRUE(flag.IsOfType<std::string>())
      << flag.Name() << ": a flag type this test does not know";
  return absl::StrCat("from-env-", flag.Name());
}

TEST(ConfigTest, EveryServerFlagIsSetFromItsVariable) {
  absl::FlagSaver restore_defaults;
  const std::vector<absl::CommandLineFlag*> flags = ServerFlags();
  // The settings the old hand-kept list lost must be found in the registry.
  std::set<std::string> names;
  for (const absl::CommandLineFlag* flag : flags) names.emplace(flag->Name());
  for (const char* expected :
       {"grpc_addr", "redis_url", "payout_shared_secret", "reconcile_interval",
        "unknown_check_after", "pending_check_after", "expiry_grace", "not_found_grace",
        "recheck_after", "status_queries_per_minute", "drain_time"}) {
    EXPECT_TRUE(names.contains(expected)) << expected;
  }
  EXPECT_FALSE(names.contains("gtest_filter")) << "only the server's flags";

  FakeEnvironment environment;
  std::map<std::string, std::string, std::less<>> expected;
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string value = ValueUnlikeDefault(*flag);
    expected.emplace(flag->Name(), value);
    environment.Set(EnvironmentVariable(flag->Name()), value);
  }
  ASSERT_TRUE(ApplyEnvironment(environment.getenv()).ok());
  for (const absl::CommandLineFlag* flag : flags) {
    EXPECT_EQ(flag->CurrentValue(), expected.find(flag->Name())->second)
        << EnvironmentVariable(flag->Name());
  }
}

TEST(ConfigTest, ABadValueIsAnErrorNamingTheVariableAndChangesNothing) {
  absl::FlagSaver restore_defaults;
  int typed_flags = 0;
  for (absl::CommandLineFlag* flag : ServerFlags()) {
    if (flag->IsOfType<std::string>()) continue;
    ++typed_flags;
    FakeEnvironment environment;
    const std::string variable = EnvironmentVariable(flag->Name());
    environment.Set(variable, "bogus");
    const absl::Status status = ApplyEnvironment(environment.getenv());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << variable;
    EXPECT_TRUE(absl::StartsWith(status.message(), variable + ": ")) << status.message();
    EXPECT_EQ(flag->CurrentValue(), flag->DefaultValue()) << variable;
  }
  EXPECT_GE(typed_flags, 10);
}

// Zero or below, written the way the flag parses it.
std::string NegativeValue(const absl::CommandLineFlag& flag) {
  return flag.IsOfType<absl::Duration>() ? "-1s" : "-1";
}

TEST(ConfigTest, EveryNumberAndDurationHasARangeThatNamesTheVariable) {
  absl::FlagSaver restore_defaults;
  // The defaults choose no way of identifying callers (that must be a decision); with one chosen
  // they are valid.
  EXPECT_EQ(ValidateServerFlags().code(), absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_insecure_dev, true);
  ASSERT_TRUE(ValidateServerFlags().ok()) << "the defaults are valid";
  int checked = 0;
  for (absl::CommandLineFlag* flag : ServerFlags()) {
    if (flag->IsOfType<std::string>() || flag->IsOfType<bool>()) continue;
    absl::FlagSaver restore;
    std::string error;
    ASSERT_TRUE(flag->ParseFrom(NegativeValue(*flag), &error)) << flag->Name() << ": " << error;
    const absl::Status status = ValidateServerFlags();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << flag->Name();
    EXPECT_TRUE(absl::StartsWith(
        status.message(),
        absl::StrCat(flag->Name(), " (", EnvironmentVariable(flag->Name()), "): ")))
        << status.message();
    ++checked;
  }
  EXPECT_GE(checked, 10);

  absl::FlagSaver restore;
  absl::SetFlag(&FLAGS_stream_buffer, 0);
  EXPECT_EQ(ValidateServerFlags().message(),
            "stream_buffer (FLIKPAY_STREAM_BUFFER): must be greater than zero, not 0");
  absl::SetFlag(&FLAGS_stream_buffer, 1);
  absl::SetFlag(&FLAGS_unknown_check_after, absl::ZeroDuration());
  EXPECT_TRUE(ValidateServerFlags().ok()) << "zero is allowed where only negative is not";
  absl::SetFlag(&FLAGS_password_mode, "md5");
  EXPECT_TRUE(absl::StartsWith(ValidateServerFlags().message(), "password_mode (FLIKPAY_"));
}

// The replica acknowledgements: unset means "by the URL's scheme" (0 for redis://, 1 through
// Sentinel), 0 turns waiting off, a negative count stops the start.
TEST(ConfigTest, MinReplicaAcksIsUnsetByDefaultAndNeverNegative) {
  absl::FlagSaver restore;
  absl::SetFlag(&FLAGS_insecure_dev, true);
  EXPECT_EQ(absl::GetFlag(FLAGS_min_replica_acks), std::nullopt);
  EXPECT_EQ(absl::GetFlag(FLAGS_replica_ack_timeout), absl::Seconds(1));
  FakeEnvironment environment;
  environment.Set("FLIKPAY_MIN_REPLICA_ACKS", "0");
  environment.Set("FLIKPAY_REPLICA_ACK_TIMEOUT", "250ms");
  ASSERT_TRUE(ApplyEnvironment(environment.getenv()).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_min_replica_acks), std::optional<int32_t>(0));
  EXPECT_EQ(absl::GetFlag(FLAGS_replica_ack_timeout), absl::Milliseconds(250));
  EXPECT_TRUE(ValidateServerFlags().ok());
  absl::SetFlag(&FLAGS_min_replica_acks, -1);
  EXPECT_EQ(ValidateServerFlags().message(),
            "min_replica_acks (FLIKPAY_MIN_REPLICA_ACKS): must not be negative, not -1");
  absl::SetFlag(&FLAGS_min_replica_acks, std::nullopt);
  absl::SetFlag(&FLAGS_replica_ack_timeout, absl::ZeroDuration());
  EXPECT_TRUE(
      absl::StartsWith(ValidateServerFlags().message(),
                       "replica_ack_timeout (FLIKPAY_REPLICA_ACK_TIMEOUT): must be greater"));
}

// A rolling upgrade from a release without change notices runs mixed replicas for a while: the
// defaults write no notices and cache nothing, and a cache without notices is refused, since a
// record changed with nothing in the stream would stay stale in it.
TEST(ConfigTest, TheRecordCacheIsOffByDefaultAndNeedsChangeNotices) {
  absl::FlagSaver restore;
  absl::SetFlag(&FLAGS_insecure_dev, true);
  EXPECT_FALSE(absl::GetFlag(FLAGS_change_notices));
  EXPECT_EQ(absl::GetFlag(FLAGS_record_cache_size), 0);
  FakeEnvironment environment;
  environment.Set("FLIKPAY_RECORD_CACHE_SIZE", "1000");
  ASSERT_TRUE(ApplyEnvironment(environment.getenv()).ok());
  EXPECT_TRUE(absl::StartsWith(ValidateServerFlags().message(),
                               "record_cache_size (FLIKPAY_RECORD_CACHE_SIZE): the record cache "
                               "needs change_notices (FLIKPAY_CHANGE_NOTICES=true)"))
      << ValidateServerFlags();
  environment.Set("FLIKPAY_CHANGE_NOTICES", "true");
  ASSERT_TRUE(ApplyEnvironment(environment.getenv()).ok());
  EXPECT_TRUE(ValidateServerFlags().ok()) << ValidateServerFlags();
  absl::SetFlag(&FLAGS_record_cache_size, 0);
  EXPECT_TRUE(ValidateServerFlags().ok()) << "notices without a cache: the upgrade's second step";
}

// The time kept after the gateway call to store its answer covers the replicas' wait too, so the
// WAIT after Apply cannot run past the caller's deadline.
TEST(ConfigTest, TheStoreMarginCoversTheReplicaWait) {
  EXPECT_EQ(StoreMargin(absl::Milliseconds(250), 0, absl::Seconds(1)), absl::Milliseconds(250))
      << "nothing waits";
  EXPECT_EQ(StoreMargin(absl::Milliseconds(250), 1, absl::Seconds(1)), absl::Milliseconds(1250));
  EXPECT_EQ(StoreMargin(absl::Milliseconds(250), 2, absl::Milliseconds(500)),
            absl::Milliseconds(750));
  EXPECT_EQ(StoreMargin(absl::Milliseconds(250), 1, absl::Seconds(5)), absl::Milliseconds(5250));
}

TEST(ConfigTest, AnUnparsableFileValueNamesTheFileVariable) {
  absl::FlagSaver restore_defaults;
  const std::string path = ::testing::TempDir() + "/retention";
  std::ofstream(path) << "thirty days\n";
  FakeEnvironment environment;
  environment.Set("FLIKPAY_RETENTION_FILE", path);
  const absl::Status status = ApplyEnvironment(environment.getenv());
  EXPECT_TRUE(absl::StartsWith(status.message(), "FLIKPAY_RETENTION_FILE: ")) << status.message();
}

TEST(ConfigTest, SecretsComeFromMountedFilesWithoutTheTrailingNewline) {
  absl::FlagSaver restore_defaults;
  const std::string path = ::testing::TempDir() + "/api_password";
  std::ofstream(path) << "s3cret-from-file\n";
  FakeEnvironment environment;
  environment.Set("FLIKPAY_API_PASSWORD_FILE", path);
  environment.Set("FLIKPAY_API_PASSWORD", "ignored-when-a-file-is-named");
  ASSERT_TRUE(ApplyEnvironment(environment.getenv()).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_api_password), "s3cret-from-file");

  FakeEnvironment missing;
  missing.Set("FLIKPAY_PAYOUT_SHARED_SECRET_FILE", path + ".absent");
  const absl::Status status = ApplyEnvironment(missing.getenv());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "FLIKPAY_PAYOUT_SHARED_SECRET_FILE: "))
      << status.message();
}

TEST(ConfigTest, VariablesThatNameNoFlagAreReported) {
  std::string typo = "FLIKPAY_REDIS_ULR=redis://x";
  std::string known = "FLIKPAY_REDIS_URL=redis://y";
  std::string file = "FLIKPAY_API_PASSWORD_FILE=/run/secret";
  std::string other = "HOME=/root";
  char* environ[] = {typo.data(), known.data(), file.data(), other.data(), nullptr};
  EXPECT_EQ(UnknownEnvironmentVariables(environ), std::vector<std::string>{"FLIKPAY_REDIS_ULR"});
}

// Expands each {a,b} group of a README variable name, e.g. FLIKPAY_{X,Y}_{KEY,SECRET} into four
// names.
std::vector<std::string> ExpandBraces(const std::string& pattern) {
  const size_t open = pattern.find('{');
  if (open == std::string::npos) return {pattern};
  const size_t close = pattern.find('}', open);
  std::vector<std::string> names;
  for (absl::string_view choice : absl::StrSplit(pattern.substr(open + 1, close - open - 1), ',')) {
    for (std::string& rest : ExpandBraces(pattern.substr(close + 1))) {
      names.push_back(absl::StrCat(pattern.substr(0, open), choice, std::move(rest)));
    }
  }
  return names;
}

TEST(ConfigTest, TheReadmeDocumentsEveryVariable) {
  std::ifstream readme(FLIKPAY_README_PATH);
  ASSERT_TRUE(readme) << FLIKPAY_README_PATH;
  std::set<std::string> documented;
  const std::regex variable(R"(`(FLIKPAY_[A-Z_{},]+)`)");
  for (std::string line; std::getline(readme, line);) {
    if (!absl::StartsWith(line, "| `FLIKPAY_")) continue;
    for (std::sregex_iterator it(line.begin(), line.end(), variable), end; it != end; ++it) {
      for (std::string& name : ExpandBraces((*it)[1])) {
        documented.insert(std::move(name));
      }
    }
  }
  for (const absl::CommandLineFlag* flag : ServerFlags()) {
    EXPECT_TRUE(documented.contains(EnvironmentVariable(flag->Name())))
        << EnvironmentVariable(flag->Name()) << " is missing from the README's configuration table";
  }
}

// Runs the server with only `assignments` (and a connector) in its environment, on free ports;
// returns its exit status (as pclose gives it) and what it wrote. `timeout`: a server that wrongly
// starts is stopped (exit 124) instead of hanging the test.
int RunServer(const std::string& assignments, std::string* output) {
  const std::string command = absl::StrCat(
      "env -i ", assignments, " FLIKPAY_ECOMMERCE_API_KEY=k timeout 10 ", FLIKPAY_SERVER_PATH,
      " --grpc_addr=127.0.0.1:0 --callback_addr=127.0.0.1:0 --admin_addr=127.0.0.1:0 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output->append(buffer, n);
  return pclose(pipe);
}

// The binary itself: a setting Kubernetes got wrong must stop the start, not be ignored (this is
// how FLIKPAY_RECONCILE_INTERVAL=bogus used to start).
TEST(ConfigTest, TheServerRefusesToStartWithABadVariable) {
  for (const char* assignment :
       {"FLIKPAY_RECONCILE_INTERVAL=bogus", "FLIKPAY_STATUS_QUERIES_PER_MINUTE=bogus",
        "FLIKPAY_DRAIN_TIME=bogus", "FLIKPAY_PASSWORD_MODE=md5",
        "FLIKPAY_REDIS_URL=http://127.0.0.1:6379", "FLIKPAY_REDIS_URL=redis://h:99999",
        "FLIKPAY_LOG_LEVEL=loud", "FLIKPAY_RETENTION=-1h", "FLIKPAY_STREAM_BUFFER=0",
        "FLIKPAY_STATUS_QUERIES_PER_MINUTE=0", "FLIKPAY_RECHECK_AFTER=-10s",
        "FLIKPAY_GRPC_CLIENT_CA=/etc/ca.crt", "FLIKPAY_CALLER_POLICY=/nonexistent/policy.json",
        "FLIKPAY_MAX_STREAM_IDS=0", "FLIKPAY_GATEWAY_QUEUE=-1", "FLIKPAY_MIN_REPLICA_ACKS=-1",
        "FLIKPAY_MIN_REPLICA_ACKS=two", "FLIKPAY_REPLICA_ACK_TIMEOUT=0s"}) {
    std::string output;
    const int status = RunServer(absl::StrCat(assignment, " FLIKPAY_INSECURE_DEV=true"), &output);
    const std::string variable(
        absl::string_view(assignment).substr(0, std::string(assignment).find('=')));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << assignment << " → " << output;
    EXPECT_NE(output.find(variable), std::string::npos) << assignment << " → " << output;
  }
}

// A policy naming no caller, valid to start with.
std::string EmptyPolicyFile() {
  const std::string path = ::testing::TempDir() + "/flikpay-empty-policy.json";
  std::ofstream(path) << R"({"callers": {}})";
  return path;
}

// Caller identity is a decision: a server told nothing about it, or told two ways at once, does not
// start (plaintext with no identity only with --insecure_dev).
TEST(ConfigTest, TheServerRefusesToStartWithoutOneWayOfIdentifyingCallers) {
  for (const auto& [assignments, expected] : std::vector<std::pair<std::string, std::string>>{
           {"", "the gRPC port needs caller identity"},
           std::pair{"FLIKPAY_CALLER_TOKENS=/t FLIKPAY_INSECURE_DEV=true",
                     "insecure_dev (FLIKPAY_INSECURE_DEV): cannot be combined"},
           std::pair{"FLIKPAY_CALLER_TOKENS=/t", "caller_policy (FLIKPAY_CALLER_POLICY): required"},
           std::pair{"FLIKPAY_GRPC_TLS_CERT=/c", "set both or neither"},
           std::pair{"FLIKPAY_INSECURE_DEV=true FLIKPAY_GATEWAY_URL=http://gateway.example/api/v3",
                     "gateway_url (FLIKPAY_GATEWAY_URL): must be https://"},
           std::pair{"FLIKPAY_CALLER_TOKENS=/t FLIKPAY_CALLER_POLICY=/p",
                     "fingerprint_key (FLIKPAY_FINGERPRINT_KEY): required"},
           // Files that are there but hold no certificate: refused at start, not served broken.
           std::pair{"FLIKPAY_FINGERPRINT_KEY=config-test-fingerprint-key "
                     "FLIKPAY_GRPC_TLS_CERT=/etc/hostname FLIKPAY_GRPC_TLS_KEY=/etc/hostname "
                     "FLIKPAY_GRPC_CLIENT_CA=/etc/hostname FLIKPAY_CALLER_POLICY=" +
                         EmptyPolicyFile(),
                     "grpc_tls_cert (FLIKPAY_GRPC_TLS_CERT): no PEM certificate"}}) {
    std::string output;
    const int status = RunServer(assignments, &output);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << assignments << " → " << output;
    EXPECT_TRUE(absl::StrContains(output, expected)) << assignments << " → " << output;
  }
}

}  // namespace
}  // namespace flikpay::server
