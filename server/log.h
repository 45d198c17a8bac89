// A small levelled log: one line per entry on stderr, collected by the container runtime.
// Bookworm's Abseil predates absl/log. Entries never carry secrets, signatures or unmasked aliases:
// callers pass ids, statuses, codes and error messages that are themselves free of them.
#ifndef FLIKPAY_SERVER_LOG_H_
#define FLIKPAY_SERVER_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace flikpay::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" or "error".
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// Writes one entry, "<UTC time> <LEVEL> flikpay: <message>", if enabled.
void WriteLog(LogLevel level, absl::string_view message);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) WriteLog(level, absl::StrFormat(format, args...));
}

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
