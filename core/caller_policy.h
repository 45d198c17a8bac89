// Who may do what: the caller policy file, read into plain values, and the decisions made from it.
// Pure: no clock, no I/O. The server reads the file (and re-reads it when it changes), finds the
// caller's grant and asks these functions; the Redis-wide daily limit is the store's.
#ifndef FLIKPAY_CORE_CALLER_POLICY_H_
#define FLIKPAY_CORE_CALLER_POLICY_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::core {

enum class Rpc { kCreateRtp, kRefund, kPayout, kGetStatus, kStreamStatus };
inline constexpr int kRpcCount = 5;

// The method name as in the proto ("CreateRtp", ...), as the policy file spells it.
absl::string_view RpcName(Rpc rpc);
// The RPCs that move money, which must have limits when granted.
bool MovesMoney(Rpc rpc);

struct AmountLimit {
  int64_t per_transaction_minor = 0;
  // Over any 24 hours, counted by the store across replicas.
  int64_t per_day_minor = 0;
};

// The window the daily limits are counted over.
inline constexpr absl::Duration kSpendWindow = absl::Hours(24);

struct CallerGrant {
  std::set<Rpc> rpcs;
  // The request-to-pay kinds CreateRtp may ask for; empty grants none.
  std::set<v1::RtpKind> kinds;
  // Sees (and streams) every caller's transactions, not only its own.
  bool read_all = false;
  // One per granted money RPC (the file is refused without it).
  std::map<Rpc, AmountLimit> limits;
  // Fair share, per replica: money calls (and GetStatus with refresh) at once, and per second.
  int max_concurrent_calls = 8;
  int calls_per_second = 50;
};

struct CallerPolicy {
  std::map<std::string, CallerGrant, std::less<>> callers;

  // nullptr for a caller the policy does not name.
  const CallerGrant* Find(absl::string_view caller) const;
};

// The policy file (JSON, see README "Caller policy"). INVALID_ARGUMENT naming the place of the
// first mistake, e.g. `callers["shop"].rpcs[2]: unknown RPC "Payot"`; unknown keys are mistakes
// too, so a typo cannot silently drop a limit.
absl::StatusOr<CallerPolicy> ParseCallerPolicy(absl::string_view json);

// The policy of a development run (--insecure_dev without a policy file): one caller, everything
// allowed, no amount limits.
CallerPolicy DevPolicy(absl::string_view caller);

// PERMISSION_DENIED unless `grant` (nullptr: a caller the policy does not know) allows `rpc`.
absl::Status Permit(const CallerGrant* grant, absl::string_view caller, Rpc rpc);
// PERMISSION_DENIED unless CreateRtp may ask for `kind`.
absl::Status PermitKind(const CallerGrant& grant, absl::string_view caller, v1::RtpKind kind);
// FAILED_PRECONDITION naming the limit when `amount_minor` is above the per-transaction limit.
absl::Status CheckTransactionLimit(const CallerGrant& grant, absl::string_view caller, Rpc rpc,
                                   int64_t amount_minor);
// The daily limit for `rpc`, if the grant has one.
std::optional<int64_t> DailyLimit(const CallerGrant& grant, Rpc rpc);
// The FAILED_PRECONDITION for a request the daily limit refused.
absl::Status DailyLimitExceeded(absl::string_view caller, Rpc rpc, int64_t amount_minor,
                                int64_t spent_minor, int64_t limit_minor);

// One line of the bearer-token file: "<caller> sha256:<64 hex digits>" (the SHA-256 of the
// token; the token itself is never stored).
struct TokenEntry {
  std::string caller;
  std::array<unsigned char, 32> sha256{};
};
// Blank lines and lines starting with '#' are skipped; INVALID_ARGUMENT naming the line otherwise.
absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(absl::string_view text);

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_CALLER_POLICY_H_
