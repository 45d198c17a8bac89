// The server's controls around callers, without a network: fair share, bearer tokens, reloading
// configuration files, bounded executors and the audit line.
#include <openssl/sha.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/audit.h"
#include "server/caller_auth.h"
#include "server/caller_gate.h"
#include "server/executor.h"
#include "server/reloading_file.h"
#include "server/tls_files.h"
#include "tests/support/test_certs.h"

namespace flikpay::server {
namespace {

TEST(CallerGateTest, ACallerRunsAtMostItsConcurrencyAndOthersAreUnaffected) {
  CallerGate gate;
  const absl::Time now = absl::Now();
  absl::Duration retry_after;
  absl::StatusOr<CallerGate::Pass> first = gate.Enter("payroll", 2, 1000, now, &retry_after);
  absl::StatusOr<CallerGate::Pass> second = gate.Enter("payroll", 2, 1000, now, &retry_after);
  ASSERT_TRUE(first.ok() && second.ok());
  absl::StatusOr<CallerGate::Pass> third = gate.Enter("payroll", 2, 1000, now, &retry_after);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status().message(),
            "caller payroll has 2 calls running, its limit; retry after 100ms");
  EXPECT_EQ(retry_after, absl::Milliseconds(100));
  EXPECT_TRUE(gate.Enter("shop", 2, 1000, now, &retry_after).ok());
  EXPECT_EQ(gate.running("payroll"), 2);
  { CallerGate::Pass done = *std::move(first); }  // the call ends
  EXPECT_EQ(gate.running("payroll"), 1);
  EXPECT_TRUE(gate.Enter("payroll", 2, 1000, now, &retry_after).ok());
}

TEST(CallerGateTest, ACallerKeepsToItsRateWithOneSecondOfBurst) {
  CallerGate gate;
  const absl::Time now = absl::Now();
  absl::Duration retry_after;
  // 2 per second: a call every 500 ms, up to a second ahead of that pace.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(gate.Enter("shop", 100, 2, now, &retry_after).ok()) << i;
  }
  absl::StatusOr<CallerGate::Pass> refused = gate.Enter("shop", 100, 2, now, &retry_after);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(retry_after, absl::Milliseconds(500));
  EXPECT_EQ(refused.status().message(),
            "caller shop is above its rate of 2 calls per second; retry after 500ms");
  EXPECT_TRUE(gate.Enter("shop", 100, 2, now + retry_after, &retry_after).ok());
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

TEST(TokenCallerTest, AKnownTokenNamesItsCallerAndNothingElseDoes) {
  absl::StatusOr<std::vector<core::TokenEntry>> tokens =
      core::ParseTokenFile(absl::StrCat("shop sha256:", Sha256Hex("shop-token-1"),
                                        "\nfinance sha256:", Sha256Hex("finance-token-1"), "\n"));
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ(TokenCaller(*tokens, "shop-token-1"), "shop");
  EXPECT_EQ(TokenCaller(*tokens, "finance-token-1"), "finance");
  EXPECT_EQ(TokenCaller(*tokens, "shop-token-2"), std::nullopt);
  EXPECT_EQ(TokenCaller(*tokens, ""), std::nullopt);
  // The file holds hashes: the hash itself is not a token.
  EXPECT_EQ(TokenCaller(*tokens, Sha256Hex("shop-token-1")), std::nullopt);

  // The header's scheme is case-insensitive (RFC 7235); anything but a bearer token is no token.
  EXPECT_EQ(BearerCaller(*tokens, "Bearer shop-token-1"), "shop");
  EXPECT_EQ(BearerCaller(*tokens, "bearer shop-token-1"), "shop");
  EXPECT_EQ(BearerCaller(*tokens, "BEARER  shop-token-1 "), "shop");
  EXPECT_EQ(BearerCaller(*tokens, "shop-token-1"), std::nullopt);
  EXPECT_EQ(BearerCaller(*tokens, "Basic shop-token-1"), std::nullopt);
}

class ReloadingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/flikpay-reload-XXXXXX";  // mkdtemp's template
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/policy.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& content) {
    const std::string temporary = path_ + ".new";
    std::ofstream(temporary) << content;
    std::filesystem::rename(temporary, path_);
  }

  // Waits until `file` holds a policy naming `caller`, or two seconds pass.
  static bool Names(const ReloadingFile<core::CallerPolicy>& file, const std::string& caller) {
    for (absl::Time until = absl::Now() + absl::Seconds(2); absl::Now() < until;) {
      if (file.current()->Find(caller) != nullptr) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  std::string dir_;
  std::string path_;
};

ReloadingFile<core::CallerPolicy>::Parser PolicyParser() {
  return [](const std::string& content) { return core::ParseCallerPolicy(content); };
}

TEST_F(ReloadingFileTest, AChangedFileIsUsedAndABrokenOneIsNot) {
  Write(R"({"callers": {"shop": {"rpcs": ["GetStatus"]}}})");
  prometheus::Counter failures;
  absl::StatusOr<std::unique_ptr<ReloadingFile<core::CallerPolicy>>> file =
      ReloadingFile<core::CallerPolicy>::Open(path_, PolicyParser(), absl::Milliseconds(20),
                                              &failures);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_NE((*file)->current()->Find("shop"), nullptr);

  Write(R"({"callers": {"finance": {"rpcs": ["GetStatus"]}}})");
  EXPECT_TRUE(Names(**file, "finance"));
  EXPECT_EQ((*file)->current()->Find("shop"), nullptr);

  Write(R"({"callers": {"broken": {"rpcs": ["Payot"]}}})");
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_NE((*file)->current()->Find("finance"), nullptr) << "the last good policy stays";
  EXPECT_EQ(failures.Value(), 1) << "counted once, not every interval";

  Write(R"({"callers": {"shop": {"rpcs": ["GetStatus"]}}})");
  EXPECT_TRUE(Names(**file, "shop"));
}

TEST_F(ReloadingFileTest, AFileThatDisappearsIsCountedOnceAndTheLastVersionStays) {
  Write(R"({"callers": {"shop": {"rpcs": ["GetStatus"]}}})");
  prometheus::Counter failures;
  absl::StatusOr<std::unique_ptr<ReloadingFile<core::CallerPolicy>>> file =
      ReloadingFile<core::CallerPolicy>::Open(path_, PolicyParser(), absl::Milliseconds(20),
                                              &failures);
  ASSERT_TRUE(file.ok());
  std::filesystem::remove(path_);
  absl::SleepFor(absl::Milliseconds(200));  // about ten intervals
  EXPECT_EQ(failures.Value(), 1);
  EXPECT_NE((*file)->current()->Find("shop"), nullptr);
}

TEST_F(ReloadingFileTest, AFileThatCannotBeUsedAtStartIsAnErrorNamingIt) {
  prometheus::Counter failures;
  EXPECT_EQ(
      ReloadingFile<core::CallerPolicy>::Open(path_, PolicyParser(), absl::Seconds(1), &failures)
          .status()
          .message(),
      path_ + ": cannot be read");
  Write(R"({"callers": {"a": {"rpcs": ["Payout"]}}})");
  EXPECT_EQ(
      ReloadingFile<core::CallerPolicy>::Open(path_, PolicyParser(), absl::Seconds(1), &failures)
          .status()
          .message(),
      path_ + R"(: callers["a"].limits.Payout: required: every money RPC granted needs )"
              "its limits");
}

class TlsMaterialTest : public ReloadingFileTest {
 protected:
  TlsMaterial Material(const testing::CertFiles& server, const testing::TestCa& ca) {
    return {server.cert_pem(), server.key_pem(), ca.cert_pem()};
  }
};

TEST_F(TlsMaterialTest, AMatchingPairAndACaPassAndEachFaultIsNamed) {
  absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create(dir_, "ca");
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<testing::CertFiles> server = ca->IssueServer("server");
  absl::StatusOr<testing::CertFiles> other = ca->IssueServer("other");
  ASSERT_TRUE(server.ok() && other.ok());
  EXPECT_TRUE(CheckTlsMaterial(Material(*server, *ca), true).ok());

  TlsMaterial mismatched = Material(*server, *ca);
  mismatched.private_key = other->key_pem();
  EXPECT_EQ(CheckTlsMaterial(mismatched, true).message(),
            "grpc_tls_key (FLIKPAY_GRPC_TLS_KEY): does not match the certificate in grpc_tls_cert");
  TlsMaterial garbage = Material(*server, *ca);
  garbage.certificate_chain = "-----BEGIN CERTIFICATE-----\nnot base64\n";
  EXPECT_EQ(CheckTlsMaterial(garbage, true).message(),
            "grpc_tls_cert (FLIKPAY_GRPC_TLS_CERT): no PEM certificate");
  TlsMaterial no_key = Material(*server, *ca);
  no_key.private_key = server->cert_pem();
  EXPECT_EQ(CheckTlsMaterial(no_key, true).message(),
            "grpc_tls_key (FLIKPAY_GRPC_TLS_KEY): no PEM private key");
  TlsMaterial no_ca = Material(*server, *ca);
  no_ca.client_ca = "";
  EXPECT_EQ(CheckTlsMaterial(no_ca, true).message(),
            "grpc_client_ca (FLIKPAY_GRPC_CLIENT_CA): no PEM certificate");
  EXPECT_TRUE(CheckTlsMaterial(no_ca, false).ok()) << "no CA needed without mutual TLS";
}

TEST_F(TlsMaterialTest, ARotationIsCopiedOnlyOnceItChecksOut) {
  absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create(dir_, "ca");
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<testing::CertFiles> first = ca->IssueServer("server");
  ASSERT_TRUE(first.ok());
  const std::string first_cert = first->cert_pem();
  prometheus::Counter failures;
  absl::StatusOr<std::unique_ptr<TlsFiles>> files = TlsFiles::Open(
      first->cert_path, first->key_path, ca->cert_path(), absl::Milliseconds(20), &failures);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(testing::ReadFile((*files)->cert_path()), first_cert);
  EXPECT_EQ(testing::ReadFile((*files)->client_ca_path()), ca->cert_pem());

  // A key that is not the certificate's: the copies keep the previous pair.
  absl::StatusOr<testing::CertFiles> stray = ca->IssueServer("stray");
  ASSERT_TRUE(stray.ok());
  ASSERT_TRUE(testing::WriteFileAtomically(first->key_path, stray->key_pem(), 0600).ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(failures.Value(), 1);
  EXPECT_EQ(testing::ReadFile((*files)->cert_path()), first_cert);
  EXPECT_NE(testing::ReadFile((*files)->key_path()), stray->key_pem());

  // A whole new pair: copied.
  absl::StatusOr<testing::CertFiles> second = ca->IssueServer("server");
  ASSERT_TRUE(second.ok());
  bool copied = false;
  for (absl::Time until = absl::Now() + absl::Seconds(2); !copied && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(10));
    copied = testing::ReadFile((*files)->cert_path()) == second->cert_pem() &&
             testing::ReadFile((*files)->key_path()) == second->key_pem();
  }
  EXPECT_TRUE(copied);
  const std::string directory = std::filesystem::path((*files)->cert_path()).parent_path();
  files->reset();
  EXPECT_FALSE(std::filesystem::exists(directory)) << "the private copies are removed";
}

TEST(ExecutorTest, WorkBeyondTheQueueIsRefusedNotKept) {
  absl::Notification release;
  absl::Notification started;
  std::atomic<int> ran{0};
  {
    Executor executor("test", 1, 2);
    ASSERT_TRUE(executor.Run([&] {
      started.Notify();
      release.WaitForNotification();
      ++ran;
    }));
    started.WaitForNotification();  // the one thread is busy
    EXPECT_TRUE(executor.Run([&] { ++ran; }));
    EXPECT_TRUE(executor.Run([&] { ++ran; }));
    EXPECT_FALSE(executor.Run([&] { ++ran; })) << "two already wait";
    EXPECT_EQ(executor.queued(), 2u);
    release.Notify();
  }
  EXPECT_EQ(ran, 3);
}

TEST(AuditTest, OneJsonLineWithEveryFactAndNothingThatBreaksIt) {
  AuditEntry entry;
  entry.caller = "spiffe://flikpay.test/finance\xff";  // not UTF-8: replaced, the line stays JSON
  entry.rpc = "Payout";
  entry.merchant_transaction_id = "p-1";
  entry.amount_minor = 9223372036854775807;
  entry.alias = "su***@bankart.flik";
  entry.outcome = absl::FailedPreconditionError("amount_minor: above the limit \"per day\"\n");
  entry.latency = absl::Microseconds(1234);
  entry.request_id = "req-7";
  const std::string line = AuditLine(entry, true, absl::FromUnixSeconds(1796000000));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["audit"], true);
  EXPECT_EQ(parsed["time"], "2026-11-30T00:53:20.000Z");
  EXPECT_EQ(parsed["level"], "info");
  EXPECT_EQ(parsed["msg"], "rpc");
  EXPECT_EQ(parsed["request_id"], "req-7");
  EXPECT_EQ(parsed["caller"], "spiffe://flikpay.test/finance\xEF\xBF\xBD");
  EXPECT_EQ(parsed["rpc"], "Payout");
  EXPECT_EQ(parsed["merchant_transaction_id"], "p-1");
  EXPECT_EQ(parsed["amount_minor"].get<int64_t>(), 9223372036854775807);
  EXPECT_EQ(parsed["alias"], "su***@bankart.flik");
  EXPECT_EQ(parsed["outcome"], "FAILED_PRECONDITION");
  EXPECT_EQ(parsed["message"], "amount_minor: above the limit \"per day\"\n");
  EXPECT_EQ(parsed["latency_us"], 1234);
  EXPECT_TRUE(IsRefusal(entry.outcome));
  EXPECT_FALSE(IsRefusal(absl::NotFoundError("no transaction")));
  EXPECT_FALSE(IsRefusal(absl::OkStatus()));
}

}  // namespace
}  // namespace flikpay::server
