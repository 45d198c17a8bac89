#include "server/log.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace flikpay::server {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

const char* Name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (absl::EqualsIgnoreCase(name, Name(level))) return level;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("\"", name, "\" is not debug, info, warning or error"));
}

void SetLogLevel(LogLevel level) { min_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

void WriteLog(LogLevel level, absl::string_view message) {
  // One fputs per entry keeps concurrent entries from interleaving.
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   Name(level), " flikpay: ", message, "\n");
  std::fputs(line.c_str(), stderr);
}

bool RepeatedFailureLog::ShouldLog() { return count_++ % every_ == 0; }

}  // namespace flikpay::server
