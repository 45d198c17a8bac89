#include "server/log.h"

#include <openssl/rand.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace flikpay::server {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

thread_local const LogContext* current_context = nullptr;

const char* Name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

void SetIfAny(LogFields& line, const char* name, const std::string& value) {
  if (!value.empty()) line[name] = value;
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

std::string LogLine(LogLevel level, absl::string_view message, const LogFields& fields,
                    absl::Time at) {
  LogFields line;
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone());
  line["level"] = Name(level);
  line["msg"] = std::string(message);
  if (const LogContext* context = current_context; context != nullptr) {
    SetIfAny(line, "request_id", context->request_id);
    SetIfAny(line, "caller", context->caller);
    SetIfAny(line, "rpc", context->rpc);
    SetIfAny(line, "merchant_transaction_id", context->merchant_transaction_id);
  }
  if (fields.is_object()) {
    for (const auto& [name, value] : fields.items()) {
      // The event's own facts win over the context's (e.g. the id a callback turned out to be for).
      line[name] = value;
    }
  }
  // Invalid UTF-8 (a caller's id, Bankart's words) is replaced, never allowed to break the line.
  return line.dump(-1, ' ', false, LogFields::error_handler_t::replace);
}

void WriteLog(LogLevel level, absl::string_view message, const LogFields& fields, bool always) {
  if (!always && !LogEnabled(level)) return;
  // One fputs per line keeps concurrent lines from interleaving.
  const std::string line = LogLine(level, message, fields, absl::Now()) + "\n";
  std::fputs(line.c_str(), stderr);
}

ScopedLogContext::ScopedLogContext(const LogContext& context) : previous_(current_context) {
  current_context = &context;
}

ScopedLogContext::~ScopedLogContext() { current_context = previous_; }

std::string RequestIdFrom(absl::string_view offered) {
  bool usable = !offered.empty() && offered.size() <= 128;
  for (char c : offered) {
    if (c <= ' ' || c > '~') usable = false;
  }
  if (usable) return std::string(offered);
  // OpenSSL's random bytes, drawn 64 ids at a time per thread: RAND_bytes' own cost per
  // call (its locks, its DRBG's per-call work) was most of a request id's (issue 15).
  constexpr size_t kPoolBytes = 1024;
  thread_local unsigned char pool[kPoolBytes];
  thread_local size_t pool_left = 0;
  unsigned char random[16];
  bool drawn = false;
  if (pool_left < sizeof(random) && RAND_bytes(pool, sizeof(pool)) == 1) pool_left = sizeof(pool);
  if (pool_left >= sizeof(random)) {
    pool_left -= sizeof(random);
    std::memcpy(random, pool + pool_left, sizeof(random));
    std::memset(pool + pool_left, 0, sizeof(random));  // each byte handed out once
    drawn = true;
  }
  if (!drawn) {
    // Only a correlation id: unique enough from the clock and a counter when OpenSSL cannot help.
    static std::atomic<uint64_t> counter{0};
    return absl::StrCat(absl::Hex(absl::ToUnixNanos(absl::Now()), absl::kZeroPad16),
                        absl::Hex(counter.fetch_add(1), absl::kZeroPad16));
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
}

bool LogSampler::Allow(absl::Time now, int64_t* suppressed) {
  absl::MutexLock lock(&mutex_);
  const int64_t second = absl::ToUnixSeconds(now);
  if (second != second_) {
    second_ = second;
    in_second_ = 0;
  }
  if (in_second_ >= per_second_) {
    ++suppressed_;
    return false;
  }
  ++in_second_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

bool RepeatedFailureLog::ShouldLog() { return count_++ % every_ == 0; }

}  // namespace flikpay::server
