// The service's log: one JSON object per line on stderr, collected by the container runtime.
// Every line has "time" (UTC, ms), "level", "msg"; lines written while a thread works for a call
// also carry that call's "request_id", "caller", "rpc" and "merchant_transaction_id"
// (ScopedLogContext); events add fields of their own. Lines are built with nlohmann/json, so no
// value (a caller's id, Bankart's words) can break a line or forge a field. Entries never carry
// secrets, signatures or unmasked aliases: callers pass ids, statuses, codes and messages that are
// themselves free of them. Bookworm's Abseil predates absl/log.
#ifndef FLIKPAY_SERVER_LOG_H_
#define FLIKPAY_SERVER_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace flikpay::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" or "error".
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Extra fields of one line, in the order written.
using LogFields = nlohmann::ordered_json;

// The line for `message` at `level`, with the calling thread's context and `fields`.
std::string LogLine(LogLevel level, absl::string_view message, const LogFields& fields,
                    absl::Time at);
// Writes one line if `level` is enabled. `always` writes it whatever the level (the audit trail).
void WriteLog(LogLevel level, absl::string_view message, const LogFields& fields = LogFields(),
              bool always = false);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) WriteLog(level, absl::StrFormat(format, args...));
}

// The call a thread is working for. Work for one call hops threads (gRPC's, an executor's), so
// each piece of work opens its own scope; scopes nest, the inner one wins for as long as it lives.
struct LogContext {
  std::string request_id;
  std::string caller;
  std::string rpc;
  std::string merchant_transaction_id;
};
class ScopedLogContext {
 public:
  explicit ScopedLogContext(const LogContext& context);
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  const LogContext* previous_;
};

// A request id taken from a caller (x-request-id) if it is one: 1 to 128 printable ASCII
// characters without spaces, so it is safe in a header to Bankart and in a log line; else a new
// one (32 hex digits, random).
std::string RequestIdFrom(absl::string_view offered);

// Lets through at most `per_second` lines a second and counts the rest, for lines anyone on the
// internet can cause (a refused callback): a flood must not flood the log. Thread-safe.
class LogSampler {
 public:
  explicit LogSampler(int per_second) : per_second_(per_second) {}
  // True when this line may be written; `suppressed` is then how many were held back since the
  // last one written.
  bool Allow(absl::Time now, int64_t* suppressed);

 private:
  const int per_second_;
  absl::Mutex mutex_;
  int64_t second_ ABSL_GUARDED_BY(mutex_) = 0;
  int in_second_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mutex_) = 0;
};

// Counts a failure that would otherwise be dropped, and says so at most once per `every`
// occurrences, so an outage is visible without flooding the log. For one thread (the reconciler's,
// the event hub's reader).
class RepeatedFailureLog {
 public:
  explicit RepeatedFailureLog(int every) : every_(every) {}
  // True when this occurrence should be logged (the first, then every Nth).
  bool ShouldLog();
  int64_t count() const { return count_; }
  void Reset() { count_ = 0; }

 private:
  const int every_;
  int64_t count_ = 0;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_LOG_H_
