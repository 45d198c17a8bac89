#include "server/flags.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

ABSL_FLAG(std::string, grpc_addr, "0.0.0.0:50051", "gRPC listen address (internal)");
ABSL_FLAG(std::string, callback_addr, "0.0.0.0:8080",
          "HTTP listen address for Bankart's callbacks (the only public port)");
ABSL_FLAG(std::string, admin_addr, "0.0.0.0:9090",
          "HTTP listen address for /healthz, /readyz and /metrics (never public)");
ABSL_FLAG(std::string, redis_url, "redis://127.0.0.1:6379/0",
          "Redis, redis://[user[:password]@]host[:port][/db], or through Sentinel "
          "redis-sentinel://[user[:password]@]host1[:port1][,host2[:port2]...]/master-name[/db]"
          "[?sentinel_password=...] (with a password: set it from a file, "
          "FLIKPAY_REDIS_URL_FILE)");
ABSL_FLAG(std::optional<int32_t>, min_replica_acks, std::nullopt,
          "replicas that must acknowledge (WAIT) each write that acknowledges a money move, else "
          "the call answers UNAVAILABLE; unset (empty): 0 for redis://, 1 for redis-sentinel://");
ABSL_FLAG(absl::Duration, replica_ack_timeout, absl::Seconds(1),
          "how long such a write waits for --min_replica_acks replicas");
ABSL_FLAG(std::string, gateway_url, "https://gateway.bankart.si/api/v3",
          "Bankart's API v3 base URL, https (the local bankart-sim: http://127.0.0.1:8480/api/v3 "
          "with --gateway_is_standin)");
ABSL_FLAG(bool, gateway_is_standin, false,
          "the gateway URL is the local bankart-sim stand-in, so plain http is allowed");
ABSL_FLAG(
    std::string, public_callback_url, "",
    "the URL Bankart calls back (default: http://127.0.0.1:<callback port>/callbacks/bankart)");
ABSL_FLAG(std::string, api_user, "", "Bankart API username");
ABSL_FLAG(std::string, api_password, "", "Bankart API password (secret)");
ABSL_FLAG(std::string, password_mode, "sha1",
          "how the API password is sent: sha1 (SHA-1 x10, Bankart's clients) or plain");
ABSL_FLAG(std::string, ecommerce_api_key, "", "E-commerce connector API key");
ABSL_FLAG(std::string, ecommerce_shared_secret, "", "E-commerce connector shared secret");
ABSL_FLAG(std::string, in_person_api_key, "", "In-Person connector API key");
ABSL_FLAG(std::string, in_person_shared_secret, "", "In-Person connector shared secret");
ABSL_FLAG(std::string, out_of_band_api_key, "", "Out-of-Band connector API key");
ABSL_FLAG(std::string, out_of_band_shared_secret, "", "Out-of-Band connector shared secret");
ABSL_FLAG(std::string, payout_api_key, "", "Payout connector API key");
ABSL_FLAG(std::string, payout_shared_secret, "", "Payout connector shared secret");
ABSL_FLAG(absl::Duration, retention, absl::Hours(24 * 30),
          "how long transaction records and idempotency keys are kept (at least 30 days)");
ABSL_FLAG(int64_t, max_events, 1000000, "status events kept in the Redis stream (approx.)");
ABSL_FLAG(int64_t, stream_buffer, 1024,
          "events a StreamStatus subscriber may fall behind before it is ended");
ABSL_FLAG(bool, change_notices, false,
          "also write a change notice to the event stream when a final record changes without a "
          "status event (what record caches follow); turn on only once every replica runs a "
          "release that reads notices");
ABSL_FLAG(bool, drop_change_notices, false,
          "do not serve: delete every change notice from the event stream and exit (before going "
          "back to a release that cannot read notices; needs change_notices off on every replica)");
ABSL_FLAG(int64_t, record_cache_size, 0,
          "final transaction records each replica keeps for GetStatus, kept coherent by the event "
          "stream (least recently used out first); needs change_notices on every replica; 0 (the "
          "default) turns the cache off");
ABSL_FLAG(absl::Duration, record_cache_max_age, absl::Minutes(10),
          "how long a cached record is served after it was read from Redis at most (a bound on "
          "staleness should a change ever miss the stream)");
ABSL_FLAG(std::string, legacy_signature_connectors, "",
          "connectors (comma-separated: ecommerce, in_person, out_of_band, payout) whose callbacks "
          "may also be signed the legacy ways (MD5 body hash, the XML v2 message and header); "
          "none by default");
ABSL_FLAG(absl::Duration, callback_date_tolerance, absl::Seconds(60),
          "how far a callback's Date may be from now");
ABSL_FLAG(absl::Duration, max_connection_age, absl::Minutes(10),
          "gRPC connections are closed after this long so streams rebalance onto new pods");
ABSL_FLAG(absl::Duration, reconcile_interval, absl::Seconds(1),
          "how often each replica's reconciler looks for transactions due a status check");
ABSL_FLAG(absl::Duration, unknown_check_after, absl::Seconds(10),
          "an UNKNOWN outcome is first checked this long after its gateway call ended");
ABSL_FLAG(absl::Duration, pending_check_after, absl::Minutes(5),
          "a PENDING transaction with no news this long is checked (lost callbacks)");
ABSL_FLAG(absl::Duration, expiry_grace, absl::Seconds(60),
          "a PENDING request-to-pay is checked this long after it expired");
ABSL_FLAG(absl::Duration, not_found_grace, absl::Seconds(60),
          "an UNKNOWN transaction Bankart does not know after this long is ERROR");
ABSL_FLAG(absl::Duration, recheck_after, absl::Seconds(10),
          "the reconciler checks one transaction at most this often (Bankart: 10/min)");
ABSL_FLAG(int32_t, status_queries_per_minute, 54,
          "status queries all replicas together may make per --status_quota_window (Bankart allows "
          "60 per API user per 60 s; 10 % is kept back for queries still on their way when the "
          "window moves); spent by priority: unknown outcomes, refreshes, expired, silent PENDING");
ABSL_FLAG(absl::Duration, status_quota_window, absl::Seconds(60),
          "the sliding window of Bankart's status-query quota (shorter only against a stand-in "
          "whose time runs faster)");
ABSL_FLAG(absl::Duration, pending_check_max, absl::Hours(1),
          "the longest wait between two checks of a silent PENDING transaction (each waits as "
          "long as the silence so far, from --pending_check_after up to this)");
ABSL_FLAG(std::string, log_level, "info",
          "the least severe log entries written: debug, info, warning or error");
ABSL_FLAG(absl::Duration, readiness_interval, absl::Seconds(2),
          "how often Redis is pinged for readiness (gRPC health of flikpay.v1.PaymentService and "
          "/readyz follow it)");
ABSL_FLAG(absl::Duration, drain_time, absl::Seconds(20),
          "on SIGTERM: how long unary calls may take to finish (below Kubernetes' 30 s)");
ABSL_FLAG(std::string, grpc_tls_cert, "",
          "PEM file: the gRPC port's certificate chain (re-read when it changes)");
ABSL_FLAG(std::string, grpc_tls_key, "", "PEM file: the gRPC port's private key");
ABSL_FLAG(std::string, grpc_client_ca, "",
          "PEM file: the CA(s) issuing callers' client certificates; turns on mutual TLS, the "
          "caller being the certificate's SPIFFE URI SAN, else its subject CN");
ABSL_FLAG(std::string, caller_tokens, "",
          "file of bearer tokens, one \"<caller> sha256:<hex>\" per line (behind a mesh that does "
          "mTLS; re-read when it changes)");
ABSL_FLAG(bool, insecure_dev, false,
          "plaintext gRPC with no caller identity, every call made as caller \"dev\"; local runs "
          "only");
ABSL_FLAG(std::string, caller_policy, "",
          "JSON file: each caller's RPCs, kinds, amount limits, read_all and fair share (re-read "
          "when it changes); required unless --insecure_dev");
ABSL_FLAG(absl::Duration, policy_reload_interval, absl::Seconds(10),
          "how often the caller policy and token files are checked for changes");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "how often the TLS certificate, key and client CA files are checked for changes");
ABSL_FLAG(bool, grpc_reflection, true, "serve gRPC server reflection (to authenticated callers)");
ABSL_FLAG(int64_t, max_stream_ids, 1000, "merchant_transaction_ids one StreamStatus may watch");
ABSL_FLAG(int64_t, max_receive_message_bytes, 65536, "the largest gRPC request accepted");
ABSL_FLAG(int64_t, max_concurrent_streams, 100, "concurrent calls on one gRPC connection");
ABSL_FLAG(int64_t, gateway_threads, 32, "threads for calls that reach the gateway");
ABSL_FLAG(int64_t, gateway_queue, 256,
          "calls that may wait for a gateway thread before new ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, store_threads, 8, "threads for store reads and stream set-up");
ABSL_FLAG(std::string, fingerprint_key, "",
          "secret (at least 16 bytes, the same on every replica) keying the idempotency "
          "fingerprints stored in Redis; required unless --insecure_dev");
ABSL_FLAG(int64_t, store_queue, 4096,
          "store tasks that may wait for a thread before new ones get RESOURCE_EXHAUSTED");

namespace flikpay::server {
namespace {

// Flags are registered with the __FILE__ of their definition; this file's name identifies ours
// among Abseil's and GoogleTest's.
bool DefinedHere(const absl::CommandLineFlag& flag) {
  return absl::EndsWith(flag.Filename(), "server/flags.cc");
}

}  // namespace

std::vector<absl::CommandLineFlag*> ServerFlags() {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (DefinedHere(*flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  return flags;
}

std::string EnvironmentVariable(absl::string_view flag_name) {
  return absl::StrCat("FLIKPAY_", absl::AsciiStrToUpper(flag_name));
}

absl::Status ApplyEnvironment(const Getenv& getenv) {
  for (absl::CommandLineFlag* flag : ServerFlags()) {
    const std::string variable = EnvironmentVariable(flag->Name());
    const std::string file_variable = variable + "_FILE";
    std::string value;
    if (const char* path = getenv(file_variable.c_str())) {
      std::ifstream in(path);
      std::stringstream content;
      if (!in || !(content << in.rdbuf())) {
        return absl::InvalidArgumentError(absl::StrCat(file_variable, ": cannot read ", path));
      }
      value = std::string(absl::StripTrailingAsciiWhitespace(content.str()));
    } else if (const char* direct = getenv(variable.c_str())) {
      value = direct;
    } else {
      continue;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      const bool from_file = getenv(file_variable.c_str()) != nullptr;
      return absl::InvalidArgumentError(
          absl::StrCat(from_file ? file_variable : variable, ": ", error));
    }
  }
  return absl::OkStatus();
}

namespace {

enum class Range { kPositive, kNotNegative };

// What each number and duration flag accepts beyond its type. A typed flag missing here fails
// ValidateServerFlags, so a new one cannot skip the check.
const std::map<std::string, Range>& Ranges() {
  static const auto* ranges = new std::map<std::string, Range>{
      {"retention", Range::kPositive},
      {"max_events", Range::kPositive},
      {"stream_buffer", Range::kPositive},
      {"record_cache_size", Range::kNotNegative},
      {"record_cache_max_age", Range::kPositive},
      {"callback_date_tolerance", Range::kPositive},
      {"max_connection_age", Range::kPositive},
      {"reconcile_interval", Range::kPositive},
      {"unknown_check_after", Range::kNotNegative},
      {"pending_check_after", Range::kPositive},
      {"expiry_grace", Range::kNotNegative},
      {"not_found_grace", Range::kNotNegative},
      {"recheck_after", Range::kPositive},
      {"status_queries_per_minute", Range::kPositive},
      {"status_quota_window", Range::kPositive},
      {"pending_check_max", Range::kPositive},
      {"drain_time", Range::kNotNegative},
      {"readiness_interval", Range::kPositive},
      {"policy_reload_interval", Range::kPositive},
      {"tls_reload_interval", Range::kPositive},
      {"max_stream_ids", Range::kPositive},
      {"max_receive_message_bytes", Range::kPositive},
      {"max_concurrent_streams", Range::kPositive},
      {"gateway_threads", Range::kPositive},
      {"gateway_queue", Range::kPositive},
      {"store_threads", Range::kPositive},
      {"store_queue", Range::kPositive},
      {"min_replica_acks", Range::kNotNegative},
      {"replica_ack_timeout", Range::kPositive},
  };
  return *ranges;
}

absl::Status OutOfRange(const absl::CommandLineFlag& flag, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(flag.Name(), " (",
                                                 EnvironmentVariable(flag.Name()), "): ", rule,
                                                 ", not ", flag.CurrentValue()));
}

}  // namespace

absl::Status ValidateServerFlags() {
  for (const absl::CommandLineFlag* flag : ServerFlags()) {
    if (flag->IsOfType<std::string>() || flag->IsOfType<bool>()) continue;
    auto range = Ranges().find(std::string(flag->Name()));
    if (range == Ranges().end()) {
      return absl::InternalError(absl::StrCat(flag->Name(), ": no range defined"));
    }
    int sign = 0;
    if (flag->IsOfType<absl::Duration>()) {
      absl::Duration value;
      if (!absl::ParseDuration(flag->CurrentValue(), &value)) {
        return OutOfRange(*flag, "must be a duration");
      }
      sign = value < absl::ZeroDuration() ? -1 : (value > absl::ZeroDuration() ? 1 : 0);
    } else if (flag->IsOfType<std::optional<int32_t>>() && flag->CurrentValue().empty()) {
      continue;  // unset: the default for the URL
    } else {
      int64_t value = 0;
      if (!absl::SimpleAtoi(flag->CurrentValue(), &value)) {
        return OutOfRange(*flag, "must be a number");
      }
      sign = value < 0 ? -1 : (value > 0 ? 1 : 0);
    }
    if (range->second == Range::kPositive && sign <= 0) {
      return OutOfRange(*flag, "must be greater than zero");
    }
    if (range->second == Range::kNotNegative && sign < 0) {
      return OutOfRange(*flag, "must not be negative");
    }
  }
  // Without notices a final record can change with nothing in the stream to tell the caches.
  if (absl::GetFlag(FLAGS_record_cache_size) > 0 && !absl::GetFlag(FLAGS_change_notices)) {
    return absl::InvalidArgumentError(
        "record_cache_size (FLIKPAY_RECORD_CACHE_SIZE): the record cache needs change_notices "
        "(FLIKPAY_CHANGE_NOTICES=true) on every replica; turn that on first (README, \"Record "
        "cache\")");
  }
  const std::string password_mode = absl::GetFlag(FLAGS_password_mode);
  if (password_mode != "sha1" && password_mode != "plain") {
    return absl::InvalidArgumentError(
        absl::StrCat("password_mode (FLIKPAY_PASSWORD_MODE): must be sha1 or plain, not \"",
                     password_mode, "\""));
  }
  const std::string gateway_url = absl::GetFlag(FLAGS_gateway_url);
  if (!absl::StartsWith(gateway_url, "https://") &&
      !(absl::GetFlag(FLAGS_gateway_is_standin) && absl::StartsWith(gateway_url, "http://"))) {
    return absl::InvalidArgumentError(
        "gateway_url (FLIKPAY_GATEWAY_URL): must be https:// (plain http only for the local "
        "stand-in, with gateway_is_standin)");
  }
  return ValidateAuthFlags();
}

absl::Status ValidateAuthFlags() {
  const bool cert = !absl::GetFlag(FLAGS_grpc_tls_cert).empty();
  const bool key = !absl::GetFlag(FLAGS_grpc_tls_key).empty();
  const bool client_ca = !absl::GetFlag(FLAGS_grpc_client_ca).empty();
  const bool tokens = !absl::GetFlag(FLAGS_caller_tokens).empty();
  const bool insecure = absl::GetFlag(FLAGS_insecure_dev);
  if (cert != key) {
    return absl::InvalidArgumentError(
        "grpc_tls_cert (FLIKPAY_GRPC_TLS_CERT) and grpc_tls_key (FLIKPAY_GRPC_TLS_KEY): set both "
        "or neither");
  }
  if (client_ca && !cert) {
    return absl::InvalidArgumentError(
        "grpc_client_ca (FLIKPAY_GRPC_CLIENT_CA): mutual TLS also needs the server's "
        "grpc_tls_cert and grpc_tls_key");
  }
  if (client_ca && tokens) {
    return absl::InvalidArgumentError(
        "grpc_client_ca (FLIKPAY_GRPC_CLIENT_CA) and caller_tokens (FLIKPAY_CALLER_TOKENS): "
        "callers are identified one way, by certificate or by token; choose one");
  }
  if (insecure && (cert || tokens)) {
    return absl::InvalidArgumentError(
        "insecure_dev (FLIKPAY_INSECURE_DEV): cannot be combined with TLS or tokens");
  }
  if (!insecure && !client_ca && !tokens) {
    return absl::InvalidArgumentError(
        "the gRPC port needs caller identity: set grpc_client_ca with grpc_tls_cert and "
        "grpc_tls_key (mutual TLS), or caller_tokens (bearer tokens), or insecure_dev for a "
        "local run without identity");
  }
  if (!insecure && absl::GetFlag(FLAGS_caller_policy).empty()) {
    return absl::InvalidArgumentError(
        "caller_policy (FLIKPAY_CALLER_POLICY): required, it says what each caller may do");
  }
  const std::string fingerprint_key = absl::GetFlag(FLAGS_fingerprint_key);
  if ((!insecure || !fingerprint_key.empty()) && fingerprint_key.size() < 16) {
    return absl::InvalidArgumentError(
        "fingerprint_key (FLIKPAY_FINGERPRINT_KEY): required, at least 16 bytes, the same secret "
        "on every replica (e.g. openssl rand -hex 32; from a file: FLIKPAY_FINGERPRINT_KEY_FILE)");
  }
  return absl::OkStatus();
}

absl::Duration StoreMargin(absl::Duration base, int min_replica_acks,
                           absl::Duration replica_ack_timeout) {
  return min_replica_acks > 0 ? base + replica_ack_timeout : base;
}

std::vector<std::string> UnknownEnvironmentVariables(char** environ) {
  absl::flat_hash_set<std::string> known;
  for (const absl::CommandLineFlag* flag : ServerFlags()) {
    known.insert(EnvironmentVariable(flag->Name()));
    known.insert(EnvironmentVariable(flag->Name()) + "_FILE");
  }
  std::vector<std::string> unknown;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    absl::string_view assignment(*entry);
    absl::string_view name = assignment.substr(0, assignment.find('='));
    if (absl::StartsWith(name, "FLIKPAY_") && !known.contains(name)) {
      unknown.emplace_back(name);
    }
  }
  return unknown;
}

}  // namespace flikpay::server
