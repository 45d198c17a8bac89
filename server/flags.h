// The server's settings: every flag, and the environment overlay that lets Kubernetes set each of
// them as FLIKPAY_<FLAG NAME>.
#ifndef FLIKPAY_SERVER_FLAGS_H_
#define FLIKPAY_SERVER_FLAGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, grpc_addr);
ABSL_DECLARE_FLAG(std::string, callback_addr);
ABSL_DECLARE_FLAG(std::string, admin_addr);
ABSL_DECLARE_FLAG(std::string, redis_url);
ABSL_DECLARE_FLAG(std::optional<int32_t>, min_replica_acks);
ABSL_DECLARE_FLAG(absl::Duration, replica_ack_timeout);
ABSL_DECLARE_FLAG(std::string, gateway_url);
ABSL_DECLARE_FLAG(bool, gateway_is_standin);
ABSL_DECLARE_FLAG(std::string, public_callback_url);
ABSL_DECLARE_FLAG(std::string, api_user);
ABSL_DECLARE_FLAG(std::string, api_password);
ABSL_DECLARE_FLAG(std::string, password_mode);
ABSL_DECLARE_FLAG(std::string, ecommerce_api_key);
ABSL_DECLARE_FLAG(std::string, ecommerce_shared_secret);
ABSL_DECLARE_FLAG(std::string, in_person_api_key);
ABSL_DECLARE_FLAG(std::string, in_person_shared_secret);
ABSL_DECLARE_FLAG(std::string, out_of_band_api_key);
ABSL_DECLARE_FLAG(std::string, out_of_band_shared_secret);
ABSL_DECLARE_FLAG(std::string, payout_api_key);
ABSL_DECLARE_FLAG(std::string, payout_shared_secret);
ABSL_DECLARE_FLAG(absl::Duration, retention);
ABSL_DECLARE_FLAG(int64_t, max_events);
ABSL_DECLARE_FLAG(int64_t, stream_buffer);
ABSL_DECLARE_FLAG(bool, change_notices);
ABSL_DECLARE_FLAG(bool, drop_change_notices);
ABSL_DECLARE_FLAG(int64_t, record_cache_size);
ABSL_DECLARE_FLAG(absl::Duration, record_cache_max_age);
ABSL_DECLARE_FLAG(absl::Duration, callback_date_tolerance);
ABSL_DECLARE_FLAG(std::string, legacy_signature_connectors);
ABSL_DECLARE_FLAG(absl::Duration, max_connection_age);
ABSL_DECLARE_FLAG(absl::Duration, reconcile_interval);
ABSL_DECLARE_FLAG(absl::Duration, unknown_check_after);
ABSL_DECLARE_FLAG(absl::Duration, pending_check_after);
ABSL_DECLARE_FLAG(absl::Duration, expiry_grace);
ABSL_DECLARE_FLAG(absl::Duration, not_found_grace);
ABSL_DECLARE_FLAG(absl::Duration, recheck_after);
ABSL_DECLARE_FLAG(int32_t, status_queries_per_minute);
ABSL_DECLARE_FLAG(absl::Duration, status_quota_window);
ABSL_DECLARE_FLAG(absl::Duration, pending_check_max);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(absl::Duration, drain_time);
ABSL_DECLARE_FLAG(absl::Duration, readiness_interval);
ABSL_DECLARE_FLAG(std::string, grpc_tls_cert);
ABSL_DECLARE_FLAG(std::string, grpc_tls_key);
ABSL_DECLARE_FLAG(std::string, grpc_client_ca);
ABSL_DECLARE_FLAG(std::string, caller_tokens);
ABSL_DECLARE_FLAG(bool, insecure_dev);
ABSL_DECLARE_FLAG(std::string, caller_policy);
ABSL_DECLARE_FLAG(absl::Duration, policy_reload_interval);
ABSL_DECLARE_FLAG(absl::Duration, tls_reload_interval);
ABSL_DECLARE_FLAG(bool, grpc_reflection);
ABSL_DECLARE_FLAG(int64_t, max_stream_ids);
ABSL_DECLARE_FLAG(int64_t, max_receive_message_bytes);
ABSL_DECLARE_FLAG(int64_t, max_concurrent_streams);
ABSL_DECLARE_FLAG(int64_t, gateway_threads);
ABSL_DECLARE_FLAG(int64_t, gateway_queue);
ABSL_DECLARE_FLAG(int64_t, store_threads);
ABSL_DECLARE_FLAG(int64_t, store_queue);
ABSL_DECLARE_FLAG(std::string, fingerprint_key);

namespace flikpay::server {

// Every flag this file's implementation defines, found in Abseil's flag registry, so a new flag is
// in the overlay (and in its test) by being defined, not by being listed a second time.
std::vector<absl::CommandLineFlag*> ServerFlags();

// FLIKPAY_ followed by the flag's name in upper case.
std::string EnvironmentVariable(absl::string_view flag_name);

using Getenv = std::function<const char*(const char*)>;

// Sets each server flag from FLIKPAY_<NAME>, or from the file named by FLIKPAY_<NAME>_FILE (a
// mounted Kubernetes secret; trailing whitespace is dropped). Call before absl::ParseCommandLine so
// the command line wins. A value that does not parse, or an unreadable file, is an INVALID_ARGUMENT
// naming the variable; nothing is half-applied that the caller should keep.
absl::Status ApplyEnvironment(const Getenv& getenv);

// The values each flag accepts beyond its type (durations and counts in range, known modes),
// checked once the environment and the command line are applied: INVALID_ARGUMENT naming the flag
// and its variable, e.g. "stream_buffer (FLIKPAY_STREAM_BUFFER): must be greater than zero, not 0".
absl::Status ValidateServerFlags();
// One way of identifying callers, configured completely (part of ValidateServerFlags): mutual TLS,
// bearer tokens, or --insecure_dev; and a caller policy unless --insecure_dev.
absl::Status ValidateAuthFlags();

// ServiceConfig::store_margin, the time kept back from a caller's deadline when the gateway is
// called, so that its answer is stored (Apply) before the caller's deadline: `base`, and when that
// store waits for replicas (min_replica_acks > 0, the count in effect) their wait on top, up to
// replica_ack_timeout. Without it a WAIT longer than `base` would run past the caller's deadline.
absl::Duration StoreMargin(absl::Duration base, int min_replica_acks,
                           absl::Duration replica_ack_timeout);

// FLIKPAY_* variables in `environ` that name no flag (a typo in a deployment would otherwise be
// silently ignored): the caller warns about them.
std::vector<std::string> UnknownEnvironmentVariables(char** environ);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_FLAGS_H_
