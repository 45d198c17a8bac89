#include "store/redis_store.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/cursor.h"
#include "store/record_codec.h"

namespace flikpay::store {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Optimistic transactions retry when another writer touched a watched key; each round lets at least
// one writer through, so this bounds the wait under heavy contention on one transaction.
constexpr int kMaxOptimisticRounds = 200;

// The event stream's floor (see RedisStore::ConnectTo): raises the stream's last generated id to
// ARGV[1] when it is lower, so XADD * never again hands out an id at or below one this process
// has seen. 1 when raised. A missing stream is left alone.
constexpr char kRaiseStreamFloorScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
local lm, ls = string.match(last, '^(%d+)-(%d+)$')
local fm, fs = string.match(ARGV[1], '^(%d+)-(%d+)$')
if fm == nil or lm == nil then return 0 end
lm, ls, fm, fs = tonumber(lm), tonumber(ls), tonumber(fm), tonumber(fs)
if fm > lm or (fm == lm and fs > ls) then
  redis.call('XSETID', KEYS[1], ARGV[1])
  return 1
end
return 0
)lua";

// Begin is a single create-if-absent, so a Lua script is the simplest atomic form: it returns the
// stored fields when the id is taken, nil after creating the record.
// A sliding window, as Bankart counts: the queries granted in the last ARGV[1] ms, as a sorted set
// scored by Redis' own clock (one clock for every replica). One more is granted while fewer than
// ARGV[2] are in it.
constexpr char kTakeQueryScript[] = R"lua(
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then return {0, held} end
redis.call('ZADD', KEYS[1], now, time[1] .. '.' .. time[2] .. '.' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {1, held + 1}
)lua";

// ARGV: window (ms). The queries granted within it, on Redis' clock like kTakeQueryScript.
constexpr char kCountQueriesScript[] = R"lua(
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
)lua";

// A verified callback's signature: "handling" while one delivery of it is being handled (for the
// lease, so a handler that dies frees it), "handled" once its outcome is stored. Any other value
// (an older flikpay's "1") counts as handled. Returns the value found, or nil after claiming it.
constexpr char kSightingHandling[] = "handling";
constexpr char kSightingHandled[] = "handled";
constexpr char kSightCallbackScript[] = R"lua(
local seen = redis.call('GET', KEYS[1])
if seen then return seen end
redis.call('SET', KEYS[1], 'handling', 'PX', ARGV[1])
return false
)lua";

// A replayed sighting's write of its own before WAIT (see RedisStore::SightCallback): the value
// again, its expiry kept (KEEPTTL), or, when the key has expired since it was read, "handled" for
// ARGV[1] ms. Either is a write, whatever the key's state.
constexpr char kTouchSightingScript[] = R"lua(
local seen = redis.call('GET', KEYS[1])
if seen then
  redis.call('SET', KEYS[1], seen, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], 'handled', 'PX', ARGV[1])
end
return 1
)lua";

// A caller's rolling spend on one rpc: a hash of minute buckets on Redis' clock (one clock for
// every replica). ARGV: amount (> 0), limit (>= 0), window (ms), all decimal. Buckets wholly before
// the window are deleted; the rest, which may have spent any part of the window, are summed, and
// the amount is added to the current minute unless the sum would then pass the limit. Returns
// {granted 0|1, spent before this request (decimal), Redis' time (ms)}.
//
// Lua's numbers are doubles, exact only below 2^53, while amounts go up to 2^63 - 1: every value is
// summed as (high, low), its digits before the last nine and those nine, both far below 2^53, so
// no sum is rounded and none wraps. What is stored is added by HINCRBY, in Redis' own int64, and
// stays within the limit.
constexpr char kReserveSpendScript[] = R"lua(
local function split(digits)
  if not string.match(digits, '^%d+$') or #digits > 19 then return nil end
  if #digits <= 9 then return 0, tonumber(digits) end
  return tonumber(string.sub(digits, 1, -10)), tonumber(string.sub(digits, -9))
end
local function carry(high, low)
  return high + math.floor(low / 1e9), low % 1e9
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[3])
local oldest = math.floor((now - window) / 60000)
local high, low = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local minute = tonumber(fields[i])
  local h, l = split(fields[i + 1])
  if minute == nil or h == nil then return redis.error_reply('unreadable spend bucket') end
  if minute < oldest then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    high, low = high + h, low + l
  end
end
high, low = carry(high, low)
local spent = high == 0 and string.format('%d', low) or string.format('%d%09d', high, low)
local amount_high, amount_low = split(ARGV[1])
local limit_high, limit_low = split(ARGV[2])
local total_high, total_low = carry(high + amount_high, low + amount_low)
if total_high > limit_high or (total_high == limit_high and total_low > limit_low) then
  return {0, spent, now}
end
redis.call('HINCRBY', KEYS[1], tostring(math.floor(now / 60000)), ARGV[1])
redis.call('PEXPIRE', KEYS[1], window + 60000)
return {1, spent, now}
)lua";

// Gives ARGV[1] back to the bucket of the minute of ARGV[2] (ms, Redis' clock at the reservation)
// unless that bucket is no longer in the window of ARGV[3] ms; never below 0. The amounts are
// compared digit by digit, so no double rounds them (both are written without leading zeros).
constexpr char kReleaseSpendScript[] = R"lua(
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local minute = math.floor(tonumber(ARGV[2]) / 60000)
if minute < math.floor((now - tonumber(ARGV[3])) / 60000) then return 0 end
local field = tostring(minute)
local held = redis.call('HGET', KEYS[1], field)
if not held then return 0 end
if greater(held, ARGV[1]) then
  redis.call('HINCRBY', KEYS[1], field, '-' .. ARGV[1])
else
  redis.call('HDEL', KEYS[1], field)
end
return 1
)lua";

constexpr char kBeginScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'data', 'fp', 'inflight', 'refunded')
end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'fp', ARGV[2], 'inflight', ARGV[4],
           'reserved', '0', 'refunded', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
return false
)lua";

std::string ReplyString(const redisReply* reply) {
  if (reply == nullptr ||
      (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS)) {
    return "";
  }
  return std::string(reply->str, reply->len);
}

int64_t ReplyInt(const redisReply* reply) {
  if (reply == nullptr) return 0;
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  int64_t value = 0;
  return absl::SimpleAtoi(ReplyString(reply), &value) ? value : 0;
}

// The "inflight" field holds the claiming gateway call's deadline (ms), 0 once the call is over;
// past the deadline the claim has lapsed.
absl::Time FlightDeadline(const redisReply* inflight) {
  const int64_t millis = ReplyInt(inflight);
  return millis == 0 ? absl::InfinitePast() : absl::FromUnixMillis(millis);
}

bool StillInFlight(const redisReply* inflight) { return FlightDeadline(inflight) > absl::Now(); }

// The first word of ROLE's answer ("master", "slave" or "sentinel"); "" for anything else.
std::string RoleOf(const redisReply* role) {
  return role != nullptr && role->type == REDIS_REPLY_ARRAY && role->elements > 0
             ? ReplyString(role->element[0])
             : "";
}

std::string Millis(absl::Time time) { return std::to_string(absl::ToUnixMillis(time)); }

}  // namespace

class RedisStore::Connection {
 public:
  // `follow_failover`: connected to a primary found through Sentinel, so READONLY and MASTERDOWN
  // mean it no longer is one (UNAVAILABLE, and lost_primary()).
  Connection(redisContext* context, const RedisConfig& config, uint64_t generation = 0,
             bool follow_failover = false)
      : context_(context),
        config_(config),
        generation_(generation),
        follow_failover_(follow_failover) {}
  ~Connection() { redisFree(context_); }

  bool broken() const { return broken_ || lost_primary_ || context_->err != 0; }
  // Whether the primary should be looked for again: it answered READONLY or MASTERDOWN, the
  // connection failed, or too few replicas acknowledged a write and the server no longer says it
  // is the primary.
  bool lost_primary() const { return follow_failover_ && broken(); }
  void MarkLostPrimary() { lost_primary_ = true; }
  // Connected to a primary found through Sentinel (see the constructor).
  bool follows_failover() const { return follow_failover_; }
  uint64_t generation() const { return generation_; }

  // Sends one command (binary-safe arguments). UNAVAILABLE when the connection fails; the
  // connection is then dropped instead of going back to the pool.
  absl::StatusOr<Reply> Run(const std::vector<std::string>& args) { return Pipeline({args}); }

  // Sends every command before reading any answer (one round trip for a MULTI/EXEC block) and
  // returns the last answer, or the first error after reading them all so the connection stays in
  // step.
  absl::StatusOr<Reply> Pipeline(const std::vector<std::vector<std::string>>& commands) {
    absl::StatusOr<std::vector<Reply>> replies = PipelineAll(commands);
    if (!replies.ok()) return replies.status();
    if (replies->empty()) return absl::InternalError("redis: no command to send");
    return std::move(replies->back());
  }

  // Like Pipeline, but returns every answer, in the order of `commands`.
  absl::StatusOr<std::vector<Reply>> PipelineAll(
      const std::vector<std::vector<std::string>>& commands) {
    if (!config_.observe_round_trip) return SendAndRead(commands);
    const absl::Time started = absl::Now();
    absl::StatusOr<std::vector<Reply>> replies = SendAndRead(commands);
    const absl::string_view first =
        commands.empty() || commands[0].empty() ? "" : absl::string_view(commands[0][0]);
    config_.observe_round_trip(first, absl::Now() - started, replies.status());
    return replies;
  }

  void SetTimeout(absl::Duration timeout) { redisSetTimeout(context_, absl::ToTimeval(timeout)); }

 private:
  absl::StatusOr<std::vector<Reply>> SendAndRead(
      const std::vector<std::vector<std::string>>& commands) {
    for (const std::vector<std::string>& args : commands) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      for (const std::string& arg : args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), argv.data(),
                                 lengths.data()) != REDIS_OK) {
        broken_ = true;
        return absl::UnavailableError(absl::StrCat("redis: ", context_->errstr));
      }
    }
    absl::Status first_error;
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
        broken_ = true;
        return absl::UnavailableError(absl::StrCat("redis: ", context_->errstr));
      }
      replies.emplace_back(static_cast<redisReply*>(raw));
      if (replies.back()->type == REDIS_REPLY_ERROR && first_error.ok()) {
        first_error = ErrorStatus(replies.back().get());
      }
    }
    if (!first_error.ok()) return first_error;
    return replies;
  }

  absl::Status ErrorStatus(const redisReply* reply) {
    const std::string message(reply->str, reply->len);
    if (follow_failover_ &&
        (absl::StartsWith(message, "READONLY") || absl::StartsWith(message, "MASTERDOWN"))) {
      lost_primary_ = true;
      return absl::UnavailableError(absl::StrCat("redis: the primary is no longer one (", message,
                                                 "); asking Sentinel again"));
    }
    // Not a usable primary just now, whatever the scheme: NOREPLICAS (min-replicas-to-write: cut
    // off from its replicas), LOADING (restarted, still reading its data), UNBLOCKED (a blocking
    // command, WAIT or XREAD, ended because the server's role changed: a demoted primary). Through
    // Sentinel, each also sends the next command to look for the primary again.
    if (absl::StartsWith(message, "NOREPLICAS") || absl::StartsWith(message, "LOADING") ||
        absl::StartsWith(message, "UNBLOCKED")) {
      // A connection whose blocking command was force-unblocked never goes back to the pool.
      if (absl::StartsWith(message, "UNBLOCKED")) broken_ = true;
      if (follow_failover_) lost_primary_ = true;
      return absl::UnavailableError(
          absl::StrCat("redis: not a usable primary (", message, ")",
                       follow_failover_ ? "; asking Sentinel again" : ""));
    }
    // Redis closes the connection after a protocol error.
    if (absl::StrContains(message, "Protocol error")) broken_ = true;
    // Redis with a password answers a connection that has not authenticated this way (or, to a
    // command of many or long arguments, with an "unauthenticated" protocol error): the URL lacks
    // the credentials, a deployment fault like an unreachable Redis, not a bug in the command.
    if (absl::StartsWith(message, "NOAUTH") || absl::StrContains(message, "unauthenticated")) {
      broken_ = true;
      return absl::UnavailableError(
          "redis: authentication required: Redis wants a password the URL does not give "
          "(redis://user:password@host or redis://:password@host)");
    }
    return absl::InternalError(absl::StrCat("redis: ", message));
  }

  redisContext* context_;
  const RedisConfig& config_;
  const uint64_t generation_;
  const bool follow_failover_;
  bool broken_ = false;
  bool lost_primary_ = false;
};

// A connection borrowed from the pool; it goes back when this goes away (unless broken).
class RedisStore::PooledConnection {
 public:
  PooledConnection(RedisStore* store, std::unique_ptr<Connection> connection)
      : store_(store), connection_(std::move(connection)) {}
  PooledConnection(PooledConnection&& other) = default;
  PooledConnection& operator=(PooledConnection&&) = delete;
  ~PooledConnection() {
    if (connection_) store_->Release(std::move(connection_));
  }
  Connection& operator*() { return *connection_; }

 private:
  RedisStore* store_;
  std::unique_ptr<Connection> connection_;
};

namespace {

int HexValue(char digit) {
  return absl::ascii_isdigit(digit) ? digit - '0' : absl::ascii_tolower(digit) - 'a' + 10;
}

// Credentials in a URL are percent-encoded (RFC 3986); nullopt for a malformed escape.
std::optional<std::string> PercentDecode(absl::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size() || !absl::ascii_isxdigit(text[i + 1]) ||
        !absl::ascii_isxdigit(text[i + 2])) {
      return std::nullopt;
    }
    decoded.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
    i += 2;
  }
  return decoded;
}

// A non-empty run of ASCII digits (SimpleAtoi alone would take a sign and spaces), as a number no
// larger than `max`.
bool ParseDigits(absl::string_view text, int max, int* value) {
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(),
                                                   [](char c) { return absl::ascii_isdigit(c); });
  return digits && absl::SimpleAtoi(text, value) && *value <= max;
}

bool HostNameChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_'; }
bool Ipv6Char(char c) { return absl::ascii_isxdigit(c) || c == ':' || c == '.'; }

// The credentials, up to the last '@' of `rest` (then removed from it), as neither host, port nor
// database can hold one: a password with an unescaped '@' or '/' still reads as meant.
absl::Status ParseCredentials(absl::string_view scheme, absl::string_view* rest,
                              RedisEndpoint* endpoint) {
  const size_t at = rest->rfind('@');
  if (at == absl::string_view::npos) return absl::OkStatus();
  const absl::string_view credentials = rest->substr(0, at);
  rest->remove_prefix(at + 1);
  if (credentials.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nothing between ", scheme, " and '@' (user:password@host)"));
  }
  const size_t colon = credentials.find(':');
  if (colon == absl::string_view::npos) {
    // AUTH needs a password: without one the connection would be Redis' default user, not the
    // one named.
    return absl::InvalidArgumentError(
        "a user without a password before '@' (user:password@host, or :password@host)");
  }
  std::optional<std::string> username = PercentDecode(credentials.substr(0, colon));
  if (!username.has_value()) {
    return absl::InvalidArgumentError("the user name has a malformed percent escape (%XX)");
  }
  std::optional<std::string> password = PercentDecode(credentials.substr(colon + 1));
  if (!password.has_value()) {
    return absl::InvalidArgumentError("the password has a malformed percent escape (%XX)");
  }
  if (password->empty()) return absl::InvalidArgumentError("the password is empty");
  endpoint->username = *std::move(username);
  endpoint->password = *std::move(password);
  return absl::OkStatus();
}

// host[:port], an IPv6 host in brackets. `address` keeps its host when `authority` names none, and
// its port when it gives none.
absl::Status ParseHostPort(absl::string_view authority, RedisAddress* address) {
  absl::string_view host = authority;
  std::optional<absl::string_view> port;
  if (absl::ConsumePrefix(&host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("an IPv6 address in '[' has no closing ']'");
    }
    absl::string_view after = host.substr(close + 1);
    host = host.substr(0, close);
    if (host.find(':') == absl::string_view::npos ||
        !std::all_of(host.begin(), host.end(), Ipv6Char)) {
      return absl::InvalidArgumentError("the host in brackets is not an IPv6 address");
    }
    if (!after.empty()) {
      if (!absl::ConsumePrefix(&after, ":")) {
        return absl::InvalidArgumentError("only :port may follow an IPv6 address's ']'");
      }
      port = after;
    }
  } else {
    if (const size_t colon = host.find(':'); colon != absl::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port->find(':') != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            "more than one ':' after the host; write an IPv6 address in brackets ([::1]:6379)");
      }
    }
    if (!std::all_of(host.begin(), host.end(), HostNameChar)) {
      return absl::InvalidArgumentError(
          "the host has a character no host name has (letters, digits, '-', '.' and '_' only)");
    }
  }
  if (!host.empty()) address->host = std::string(host);
  if (port.has_value() && (!ParseDigits(*port, 65535, &address->port) || address->port == 0)) {
    return absl::InvalidArgumentError("the port is not a number from 1 to 65535");
  }
  return absl::OkStatus();
}

absl::Status ParseDatabase(absl::string_view database, RedisEndpoint* endpoint) {
  if (!database.empty() &&
      !ParseDigits(database, std::numeric_limits<int>::max(), &endpoint->database)) {
    return absl::InvalidArgumentError("the database (after '/') is not a number");
  }
  return absl::OkStatus();
}

constexpr absl::string_view kRedisScheme = "redis://";
constexpr absl::string_view kSentinelScheme = "redis-sentinel://";
constexpr int kSentinelPort = 26379;

// What follows redis-sentinel:// (see ParseRedisUrl).
absl::StatusOr<RedisEndpoint> ParseSentinelUrl(absl::string_view rest) {
  RedisEndpoint endpoint;
  // The query comes off first: the credentials end at the last '@' (see ParseCredentials), and an
  // unescaped '@' in the sentinel_password must not be taken for it. The query starts at
  // "?sentinel_password=" (its only parameter), or else at the first '?' after the credentials (a
  // data node's password may hold a '?' of its own).
  std::optional<absl::string_view> query;
  size_t question = rest.find("?sentinel_password=");
  if (question == absl::string_view::npos) {
    const size_t at = rest.rfind('@');
    question = rest.find('?', at == absl::string_view::npos ? 0 : at + 1);
  }
  if (question != absl::string_view::npos) {
    query = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  if (absl::Status s = ParseCredentials(kSentinelScheme, &rest, &endpoint); !s.ok()) return s;
  if (rest.find('#') != absl::string_view::npos ||
      (query.has_value() && query->find('#') != absl::string_view::npos)) {
    return absl::InvalidArgumentError("fragments (#) are not supported");
  }
  if (query.has_value()) {
    if (!absl::ConsumePrefix(&*query, "sentinel_password=") ||
        query->find('&') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "the only query parameter is sentinel_password=... (percent-encoded)");
    }
    std::optional<std::string> password = PercentDecode(*query);
    if (!password.has_value()) {
      return absl::InvalidArgumentError(
          "the sentinel_password has a malformed percent escape (%XX)");
    }
    if (password->empty()) return absl::InvalidArgumentError("the sentinel_password is empty");
    endpoint.sentinel_password = *std::move(password);
  }
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "no master name: redis-sentinel://host1:port1,host2:port2/master-name[/db]");
  }
  const absl::string_view hosts = rest.substr(0, slash);
  absl::string_view path = rest.substr(slash + 1);
  absl::string_view database;
  if (const size_t next = path.find('/'); next != absl::string_view::npos) {
    database = path.substr(next + 1);
    path = path.substr(0, next);
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "no master name: redis-sentinel://host1:port1,host2:port2/master-name[/db]");
  }
  if (!std::all_of(path.begin(), path.end(), HostNameChar)) {
    return absl::InvalidArgumentError(
        "the master name has a character other than letters, digits, '-', '.' and '_'");
  }
  endpoint.master_name = std::string(path);
  for (const absl::string_view entry : absl::StrSplit(hosts, ',')) {
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          "an empty sentinel address (host:port, separated by ',', at least one)");
    }
    RedisAddress address{.host = "", .port = kSentinelPort};
    if (absl::Status s = ParseHostPort(entry, &address); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("a sentinel address: ", s.message()));
    }
    if (address.host.empty()) {
      return absl::InvalidArgumentError("a sentinel address has no host");
    }
    endpoint.sentinels.push_back(std::move(address));
  }
  if (absl::Status s = ParseDatabase(database, &endpoint); !s.ok()) return s;
  return endpoint;
}

}  // namespace

// The messages never quote the URL: a mistyped one may carry the password where the host, port or
// database should be, and main prints them.
absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url) {
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "rediss://")) {
    return absl::InvalidArgumentError(
        "rediss:// (TLS to Redis) is not supported: use redis:// on a network where that is safe");
  }
  if (absl::StartsWithIgnoreCase(rest, kSentinelScheme)) {
    return ParseSentinelUrl(rest.substr(kSentinelScheme.size()));
  }
  if (!absl::StartsWithIgnoreCase(rest, kRedisScheme)) {
    return absl::InvalidArgumentError("must start with redis:// or redis-sentinel://");
  }
  rest.remove_prefix(kRedisScheme.size());
  RedisEndpoint endpoint;
  if (absl::Status s = ParseCredentials(kRedisScheme, &rest, &endpoint); !s.ok()) return s;

  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return absl::InvalidArgumentError("query parameters and fragments (? or #) are not supported");
  }
  absl::string_view authority = rest;
  absl::string_view database;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    authority = rest.substr(0, slash);
    database = rest.substr(slash + 1);
  }
  RedisAddress address{.host = endpoint.host, .port = endpoint.port};
  if (absl::Status s = ParseHostPort(authority, &address); !s.ok()) return s;
  endpoint.host = std::move(address.host);
  endpoint.port = address.port;
  if (absl::Status s = ParseDatabase(database, &endpoint); !s.ok()) return s;
  return endpoint;
}

RedisStore::RedisStore(RedisConfig config)
    : config_(std::move(config)),
      nonce_prefix_(absl::StrCat(getpid(), ".", absl::ToUnixNanos(absl::Now()))) {
  // main checks the URL at start-up; a bad one here keeps the defaults, whose connection failures
  // say where they tried.
  endpoint_ = ParseRedisUrl(config_.url).value_or(RedisEndpoint{});
  min_replica_acks_ = config_.min_replica_acks.value_or(endpoint_.uses_sentinel() ? 1 : 0);
  if (endpoint_.uses_sentinel()) watcher_ = std::thread([this] { WatchSentinels(); });
}

RedisStore::~RedisStore() {
  stop_watching_.Notify();
  {
    absl::MutexLock lock(&watch_mutex_);
    if (watch_fd_ >= 0) shutdown(watch_fd_, SHUT_RDWR);  // wakes the blocking read
  }
  if (watcher_.joinable()) watcher_.join();
}

void RedisStore::WatchSentinels() {
  size_t next = 0;
  while (!stop_watching_.HasBeenNotified()) {
    const RedisAddress& sentinel = endpoint_.sentinels[next++ % endpoint_.sentinels.size()];
    redisContext* context = redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port,
                                                    absl::ToTimeval(config_.connect_timeout));
    bool subscribed = false;
    if (context != nullptr && context->err == 0) {
      redisEnableKeepAlive(context);
      Connection asking(context, config_);
      asking.SetTimeout(std::min(config_.connect_timeout, config_.command_timeout));
      const bool authenticated = endpoint_.sentinel_password.empty() ||
                                 asking.Run({"AUTH", endpoint_.sentinel_password}).ok();
      if (authenticated && asking.Run({"SUBSCRIBE", "+switch-master"}).ok()) {
        subscribed = true;
        redisSetTimeout(context, timeval{0, 0});  // messages come when they come
        {
          absl::MutexLock lock(&watch_mutex_);
          watch_fd_ = context->fd;
        }
        while (!stop_watching_.HasBeenNotified()) {
          void* raw = nullptr;
          if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) break;
          Reply message(static_cast<redisReply*>(raw));
          // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
          if (message->type != REDIS_REPLY_ARRAY || message->elements != 3 ||
              ReplyString(message->element[0]) != "message") {
            continue;
          }
          const std::vector<std::string> words =
              absl::StrSplit(ReplyString(message->element[2]), ' ', absl::SkipEmpty());
          RedisAddress to;
          if (words.size() != 5 || words[0] != endpoint_.master_name ||
              !absl::SimpleAtoi(words[4], &to.port)) {
            continue;
          }
          to.host = words[3];
          absl::MutexLock lock(&mutex_);
          if (primary_ == to) continue;
          ++generation_;  // the pooled connections are the old primary's
          primary_ = to;
        }
        absl::MutexLock lock(&watch_mutex_);
        watch_fd_ = -1;
      }
      // `asking` frees the context.
    } else if (context != nullptr) {
      redisFree(context);
    }
    if (!subscribed || !stop_watching_.HasBeenNotified()) {
      stop_watching_.WaitForNotificationWithTimeout(absl::Milliseconds(subscribed ? 100 : 500));
    }
  }
}

std::string RedisStore::TxKey(absl::string_view id) const {
  return absl::StrCat(config_.key_prefix, "tx:", id);
}

std::string RedisStore::WatchKey() const { return absl::StrCat(config_.key_prefix, "watch"); }

std::string RedisStore::UnknownWatchKey() const {
  return absl::StrCat(config_.key_prefix, "watch:unknown");
}

std::string RedisStore::WatchKeyFor(const v1::Transaction& transaction) const {
  return transaction.status() == v1::TRANSACTION_STATUS_UNKNOWN ? UnknownWatchKey() : WatchKey();
}

std::string RedisStore::UuidKey(absl::string_view uuid) const {
  return absl::StrCat(config_.key_prefix, "uuid:", uuid);
}

std::string RedisStore::LeaseKey(absl::string_view id) const {
  return absl::StrCat(config_.key_prefix, "lease:", id);
}

std::string RedisStore::StatusQuotaKey() const {
  return absl::StrCat(config_.key_prefix, "statusquota");
}

namespace {

// Keeps [A-Za-z0-9._~-] and percent-escapes every other byte, '%' and ':' included, so the parts of
// a key stay apart and no caller string can name another's key (nor a cluster hash tag, "{...}").
std::string KeyPart(absl::string_view text) {
  std::string escaped;
  for (const char c : text) {
    if (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-') {
      escaped.push_back(c);
    } else {
      absl::StrAppend(&escaped, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return escaped;
}

}  // namespace

std::string RedisStore::SpendKey(absl::string_view caller, absl::string_view rpc) const {
  return absl::StrCat(config_.key_prefix, "spend:", KeyPart(caller), ":", KeyPart(rpc));
}

std::string RedisStore::EventsKey() const { return absl::StrCat(config_.key_prefix, "events"); }

std::string RedisStore::SightingKey(absl::string_view signature) const {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(signature.data()), signature.size(), digest);
  return absl::StrCat(config_.key_prefix, "seen:",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), sizeof(digest))));
}

std::string RedisStore::UnmatchedKey() const {
  return absl::StrCat(config_.key_prefix, "unmatched");
}

absl::StatusOr<RedisStore::PooledConnection> RedisStore::Acquire() {
  std::vector<std::unique_ptr<Connection>> outdated;  // freed outside the lock
  {
    absl::MutexLock lock(&mutex_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->generation() == generation_) {
        return PooledConnection(this, std::move(connection));
      }
      outdated.push_back(std::move(connection));
    }
  }
  outdated.clear();
  absl::StatusOr<std::unique_ptr<Connection>> connection = Connect();
  if (!connection.ok()) return connection.status();
  return PooledConnection(this, *std::move(connection));
}

// Every connection comes from here, the pool's and the one WaitForEvents blocks on in XREAD alike,
// so none is used before it has authenticated and selected its database (and, through Sentinel,
// found the primary).
absl::StatusOr<std::unique_ptr<RedisStore::Connection>> RedisStore::Connect() {
  if (!endpoint_.uses_sentinel()) {
    return ConnectTo({.host = endpoint_.host, .port = endpoint_.port}, 0, false);
  }
  uint64_t generation = 0;
  // A connection to the primary found last, if there is one and it answers; one that does not is
  // given up (a new generation). Leaves `generation` at the one now current.
  auto connect_to_known = [&]() -> std::unique_ptr<Connection> {
    std::optional<RedisAddress> known;
    {
      absl::MutexLock lock(&mutex_);
      generation = generation_;
      known = primary_;
    }
    if (!known.has_value()) return nullptr;
    absl::StatusOr<std::unique_ptr<Connection>> connection = ConnectTo(*known, generation, true);
    if (connection.ok()) return *std::move(connection);
    MarkStale(generation);
    absl::MutexLock lock(&mutex_);
    generation = generation_;
    return nullptr;
  };
  if (std::unique_ptr<Connection> connection = connect_to_known()) return connection;
  absl::MutexLock discovering(&discovery_mutex_);
  // Another caller may have found the primary while this one waited for the discovery lock.
  if (std::unique_ptr<Connection> connection = connect_to_known()) return connection;
  RedisAddress primary;
  absl::StatusOr<std::unique_ptr<Connection>> connection = Discover(generation, &primary);
  if (!connection.ok()) return connection.status();
  absl::MutexLock lock(&mutex_);
  if (generation_ == generation) primary_ = primary;
  return connection;
}

absl::StatusOr<std::unique_ptr<RedisStore::Connection>> RedisStore::Discover(
    uint64_t generation, RedisAddress* primary) {
  std::vector<std::string> failures;
  for (const RedisAddress& sentinel : endpoint_.sentinels) {
    const std::string where = absl::StrCat("sentinel ", sentinel.host, ":", sentinel.port);
    const absl::Time started = absl::Now();
    redisContext* context = redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port,
                                                    absl::ToTimeval(config_.connect_timeout));
    if (context == nullptr || context->err != 0) {
      std::string reason = context ? context->errstr : "out of memory";
      if (context) redisFree(context);
      if (config_.observe_round_trip) {
        config_.observe_round_trip("CONNECT", absl::Now() - started,
                                   absl::UnavailableError(reason));
      }
      failures.push_back(absl::StrCat(where, " unreachable: ", reason));
      continue;
    }
    Connection asking(context, config_);
    // A sentinel answers at once or not at all: it must not hold the discovery long.
    asking.SetTimeout(std::min(config_.connect_timeout, config_.command_timeout));
    if (!endpoint_.sentinel_password.empty()) {
      absl::StatusOr<Reply> authenticated = asking.Run({"AUTH", endpoint_.sentinel_password});
      if (!authenticated.ok()) {
        std::string reason(authenticated.status().message());
        absl::StrReplaceAll({{endpoint_.sentinel_password, "***"}}, &reason);
        failures.push_back(absl::StrCat(where, ": authentication failed (", reason, ")"));
        continue;
      }
    }
    absl::StatusOr<Reply> named =
        asking.Run({"SENTINEL", "get-master-addr-by-name", endpoint_.master_name});
    if (!named.ok()) {
      failures.push_back(absl::StrCat(where, ": ", named.status().message()));
      continue;
    }
    const redisReply* address = named->get();
    RedisAddress candidate;
    if (address->type != REDIS_REPLY_ARRAY || address->elements != 2 ||
        !absl::SimpleAtoi(ReplyString(address->element[1]), &candidate.port)) {
      failures.push_back(
          absl::StrCat(where, " knows no master named \"", endpoint_.master_name, "\""));
      continue;
    }
    candidate.host = ReplyString(address->element[0]);
    absl::StatusOr<std::unique_ptr<Connection>> connection = ConnectTo(candidate, generation, true);
    if (!connection.ok()) {
      failures.push_back(absl::StrCat(where, " named ", candidate.host, ":", candidate.port, ": ",
                                      connection.status().message()));
      continue;
    }
    *primary = std::move(candidate);
    return connection;
  }
  return absl::UnavailableError(absl::StrCat("redis: no sentinel named a reachable primary for \"",
                                             endpoint_.master_name, "\" (",
                                             absl::StrJoin(failures, "; "), ")"));
}

void RedisStore::MarkStale(uint64_t generation) {
  absl::MutexLock lock(&mutex_);
  if (generation_ != generation) return;  // already moved on
  ++generation_;
  primary_.reset();
}

absl::StatusOr<std::unique_ptr<RedisStore::Connection>> RedisStore::ConnectTo(
    const RedisAddress& address, uint64_t generation, bool must_be_primary) {
  const absl::Time started = absl::Now();
  redisContext* context = redisConnectWithTimeout(address.host.c_str(), address.port,
                                                  absl::ToTimeval(config_.connect_timeout));
  if (context == nullptr || context->err != 0) {
    std::string reason = context ? context->errstr : "out of memory";
    if (context) redisFree(context);
    absl::Status unreachable = absl::UnavailableError(
        absl::StrCat("redis at ", address.host, ":", address.port, " unreachable: ", reason));
    if (config_.observe_round_trip) {
      config_.observe_round_trip("CONNECT", absl::Now() - started, unreachable);
    }
    return unreachable;
  }
  auto connection = std::make_unique<Connection>(context, config_, generation, must_be_primary);
  connection->SetTimeout(config_.command_timeout);
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
    auth.push_back(endpoint_.password);
    absl::StatusOr<Reply> authenticated = connection->Run(auth);
    if (!authenticated.ok()) {
      if (connection->broken()) return authenticated.status();  // no answer at all
      // Redis' own words (WRONGPASS, or no password configured) say which; they never repeat the
      // password, and it is blanked out should a proxy in between do so.
      std::string reason(absl::StripPrefix(authenticated.status().message(), "redis: "));
      absl::StrReplaceAll({{endpoint_.password, "***"}}, &reason);
      return absl::UnavailableError(absl::StrCat(
          "redis: authentication failed for ",
          endpoint_.username.empty() ? "the default user"
                                     : absl::StrCat("user \"", endpoint_.username, "\""),
          " (", reason, ")"));
    }
  } else {
    // A Redis that wants a password says so here, rather than to the first real command (to which
    // it may answer with a protocol error instead, and close the connection).
    absl::StatusOr<Reply> ping = connection->Run({"PING"});
    if (!ping.ok()) return ping.status();
  }
  if (endpoint_.database != 0) {
    absl::StatusOr<Reply> selected =
        connection->Run({"SELECT", std::to_string(endpoint_.database)});
    if (!selected.ok()) return selected.status();
  }
  if (must_be_primary) {
    // A sentinel's answer may be stale (a failover under way), and a known primary may have been
    // turned into a replica since.
    absl::StatusOr<Reply> role = connection->Run({"ROLE"});
    if (!role.ok()) return role.status();
    const std::string is = RoleOf(role->get());
    if (is != "master") {
      return absl::UnavailableError(absl::StrCat("redis at ", address.host, ":", address.port,
                                                 " is not the primary (ROLE ", is, ")"));
    }
  }
  // A primary that lost the stream's tail (a failover to a replica that had not received it, or a
  // restart with the last second of AOF unwritten) would hand out the lost ids again, for other
  // events, on its next XADD: a client holding such a cursor would resume after an event it never
  // saw. Before its first command, each new connection raises the stream's last id to the highest
  // this process has seen, so the lost cursors stay lost (CanResumeFrom: OUT_OF_RANGE).
  std::optional<core::Cursor> floor;
  {
    absl::MutexLock lock(&mutex_);
    floor = highest_cursor_;
  }
  if (floor.has_value()) {
    absl::StatusOr<Reply> raised =
        connection->Run({"EVAL", kRaiseStreamFloorScript, "1", EventsKey(),
                         absl::StrCat(floor->milliseconds, "-", floor->sequence)});
    if (!raised.ok()) return raised.status();
  }
  return connection;
}

void RedisStore::SawCursor(absl::string_view cursor) {
  const std::optional<core::Cursor> seen = core::ParseCursor(cursor);
  if (!seen.has_value()) return;
  absl::MutexLock lock(&mutex_);
  if (!highest_cursor_.has_value() || *highest_cursor_ < *seen) highest_cursor_ = *seen;
}

void RedisStore::Release(std::unique_ptr<Connection> connection) {
  if (connection->lost_primary()) {
    MarkStale(connection->generation());
    return;
  }
  if (connection->broken()) return;
  absl::MutexLock lock(&mutex_);
  if (static_cast<int>(idle_.size()) < config_.max_idle_connections &&
      connection->generation() == generation_) {
    idle_.push_back(std::move(connection));
  }
}

// Which writes wait for replicas, and why: those after which flikpay tells someone money moves or
// moved. The claim of Begin and BeginRefund comes before the gateway call: were it lost in a
// failover, a retry of the same id would be taken for new and could pay twice. Apply stores a
// gateway's answer or a callback's outcome, which the RPC or the callback's 200 then acknowledges.
// A repeat acknowledges what is stored just the same (a retried Begin or BeginRefund answered from
// the record, a repeated Apply, a replayed callback's sighting), so it waits too. A spend
// reservation (ReserveSpend) waits as well: lost, it would let a caller pass its limit. The rest
// (schedules, leases, the status-query quota, first sightings, unmatched callbacks) can be lost
// with no money misreported: the reconciler and Bankart's retries make them good again.
absl::Status RedisStore::AwaitReplicas(Connection& connection) {
  if (min_replica_acks_ <= 0) return absl::OkStatus();
  // WAIT 0 would wait forever.
  const absl::Duration timeout = std::max(config_.replica_ack_timeout, absl::Milliseconds(1));
  connection.SetTimeout(timeout + config_.command_timeout);
  absl::StatusOr<Reply> acknowledged =
      connection.Run({"WAIT", std::to_string(min_replica_acks_),
                      std::to_string(absl::ToInt64Milliseconds(timeout))});
  connection.SetTimeout(config_.command_timeout);
  if (!acknowledged.ok()) return acknowledged.status();
  const int64_t replicas = ReplyInt(acknowledged->get());
  if (replicas >= min_replica_acks_) return absl::OkStatus();
  const absl::Status shortfall = absl::UnavailableError(
      absl::StrCat("redis: the write is not yet durable: ", replicas, " of ", min_replica_acks_,
                   " replica(s) acknowledged it within ", absl::FormatDuration(timeout)));
  // A replica slow or down, or this primary cut off from its replicas (perhaps being failed over).
  // Only a server that is no longer the primary is a reason to look for it again: dropping the pool
  // (and moving to the next generation, which sets the event hub's reads aside) for one slow
  // replica would churn every connection for nothing. ROLE on this connection tells them apart; a
  // ROLE that fails counts as lost.
  if (connection.follows_failover()) {
    absl::StatusOr<Reply> role = connection.Run({"ROLE"});
    if (!role.ok() || RoleOf(role->get()) != "master") connection.MarkLostPrimary();
  }
  return shortfall;
}

// WAIT counts replicas up to the offset of this connection's own last write, and replication is
// in order: a write of its own now (an expiry, the key's usual one, so nothing changes but that
// it is written) lets WAIT cover every earlier write to the primary, whichever connection made
// it. PEXPIRE of a key that is gone is no write, but then nothing under it is left to acknowledge.
absl::Status RedisStore::AwaitReplicasOfEarlierWrites(Connection& connection,
                                                      const std::string& key, absl::Duration ttl) {
  if (min_replica_acks_ <= 0) return absl::OkStatus();
  absl::StatusOr<Reply> touched = connection.Run(
      {"PEXPIRE", key, std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl)))});
  if (!touched.ok()) return touched.status();
  return AwaitReplicas(connection);
}

template <typename Work>
auto RedisStore::WithConnection(Work work) -> decltype(work(std::declval<Connection&>())) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  return work(**leased);
}

namespace {

absl::StatusOr<v1::Transaction> Decode(const redisReply* data, const redisReply* refunded) {
  if (data == nullptr || data->type != REDIS_REPLY_STRING) {
    return absl::DataLossError("stored transaction record is unreadable");
  }
  absl::StatusOr<v1::Transaction> transaction =
      DecodeRecord(absl::string_view(data->str, data->len));
  if (transaction.ok()) {
    transaction->set_refunded_amount_minor(ReplyInt(refunded));
  }
  return transaction;
}

BeginResult Claimed(const v1::Transaction& initial) {
  BeginResult result;
  result.created = true;
  result.in_flight = true;
  result.transaction = initial;
  return result;
}

// What is stored under an id someone claimed first, from its hash fields data, fp, inflight and
// refunded (in that order).
absl::StatusOr<BeginResult> AlreadyClaimed(redisReply* const* fields,
                                           absl::string_view fingerprint) {
  absl::StatusOr<v1::Transaction> stored = Decode(fields[0], fields[3]);
  if (!stored.ok()) return stored.status();
  BeginResult result;
  result.transaction = *std::move(stored);
  result.stored_fingerprint = ReplyString(fields[1]);
  result.same_request = result.stored_fingerprint == fingerprint;
  result.in_flight = StillInFlight(fields[2]);
  return result;
}

}  // namespace

// A retry of a claimed id whose call is over is answered from the stored record (by
// PaymentService::ClaimAndSend): as much an acknowledgement as the first answer, so what the claim
// and the stored answer wrote must have reached the replicas first (the first caller may have been
// refused "not yet durable", and this primary may be cut off from them). A claim still in flight
// is answered ABORTED, which acknowledges nothing.
absl::Status RedisStore::AwaitClaimedBefore(Connection& connection, const std::string& key,
                                            const BeginResult& claimed) {
  if (claimed.in_flight) return absl::OkStatus();
  return AwaitReplicasOfEarlierWrites(connection, key, config_.retention);
}

absl::StatusOr<BeginResult> RedisStore::Begin(const v1::Transaction& initial,
                                              absl::string_view fingerprint,
                                              absl::Time flight_deadline, absl::Time first_check) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<BeginResult> {
    absl::StatusOr<Reply> reply = connection.Run(
        {"EVAL", kBeginScript, "2", TxKey(initial.merchant_transaction_id()), UnknownWatchKey(),
         EncodeRecord(initial), std::string(fingerprint),
         std::to_string(absl::ToInt64Milliseconds(config_.retention)), Millis(flight_deadline),
         Millis(first_check), initial.merchant_transaction_id()});
    if (!reply.ok()) return reply.status();
    if ((*reply)->type == REDIS_REPLY_NIL) {
      if (absl::Status durable = AwaitReplicas(connection); !durable.ok()) return durable;
      return Claimed(initial);
    }
    if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements != 4) {
      return absl::InternalError("redis: unexpected answer to the begin script");
    }
    absl::StatusOr<BeginResult> claimed = AlreadyClaimed((*reply)->element, fingerprint);
    if (!claimed.ok()) return claimed;
    if (absl::Status durable =
            AwaitClaimedBefore(connection, TxKey(initial.merchant_transaction_id()), *claimed);
        !durable.ok()) {
      return durable;
    }
    return claimed;
  });
}

absl::StatusOr<BeginResult> RedisStore::BeginRefund(const v1::Transaction& refund,
                                                    absl::string_view fingerprint,
                                                    absl::Time flight_deadline,
                                                    absl::Time first_check, RefundCap cap) {
  // WATCH/MULTI rather than a Lua script: the cap check needs the original's type and status, which
  // live in its protobuf record; decoding that is C++'s job. EXEC fails if anything wrote the
  // original (or the refund id) after WATCH, so two refunds can never both pass the check on the
  // same `reserved` value; the loser re-reads and re-checks.
  return WithConnection([&](Connection& connection) -> absl::StatusOr<BeginResult> {
    const std::string refund_key = TxKey(refund.merchant_transaction_id());
    const std::string original_key = TxKey(refund.original_merchant_transaction_id());
    for (int round = 0; round < kMaxOptimisticRounds; ++round) {
      // WATCH and both reads in one round trip: Redis runs a connection's commands in the order
      // sent, so both reads come after WATCH (the original's is wasted when the refund id is
      // taken, which is rare and harmless).
      absl::StatusOr<std::vector<Reply>> read =
          connection.PipelineAll({{"WATCH", original_key, refund_key},
                                  {"HMGET", refund_key, "data", "fp", "inflight", "refunded"},
                                  {"HMGET", original_key, "data", "reserved", "refunded"}});
      if (!read.ok()) return read.status();
      const Reply& existing = (*read)[1];
      const Reply& original = (*read)[2];
      if (existing->element[0]->type != REDIS_REPLY_NIL) {
        connection.Run({"UNWATCH"}).IgnoreError();
        absl::StatusOr<BeginResult> claimed = AlreadyClaimed(existing->element, fingerprint);
        if (!claimed.ok()) return claimed;
        if (absl::Status durable = AwaitClaimedBefore(connection, refund_key, *claimed);
            !durable.ok()) {
          return durable;
        }
        return claimed;
      }
      if (original->element[0]->type == REDIS_REPLY_NIL) {
        connection.Run({"UNWATCH"}).IgnoreError();
        return absl::NotFoundError("original_merchant_transaction_id: no such transaction");
      }
      absl::StatusOr<v1::Transaction> debit = Decode(original->element[0], original->element[2]);
      if (!debit.ok()) return debit.status();
      const absl::Status refundable =
          core::CheckRefundable(*debit, ReplyInt(original->element[1]), refund.amount_minor());
      if (!refundable.ok() && cap == RefundCap::kEnforce) {
        connection.Run({"UNWATCH"}).IgnoreError();
        return refundable;
      }
      const std::string ttl = std::to_string(absl::ToInt64Milliseconds(config_.retention));
      absl::StatusOr<Reply> executed = connection.Pipeline(
          {{"MULTI"},
           {"HINCRBY", original_key, "reserved", std::to_string(refund.amount_minor())},
           {"HSET", refund_key, "data", EncodeRecord(refund), "fp", std::string(fingerprint),
            "inflight", Millis(flight_deadline), "reserved", "0", "refunded", "0"},
           {"PEXPIRE", refund_key, ttl},
           {"ZADD", UnknownWatchKey(), Millis(first_check), refund.merchant_transaction_id()},
           {"EXEC"}});
      if (!executed.ok()) return executed.status();
      if ((*executed)->type == REDIS_REPLY_NIL) continue;  // someone wrote in between
      if (absl::Status durable = AwaitReplicas(connection); !durable.ok()) return durable;
      BeginResult claimed = Claimed(refund);
      claimed.beyond_cap = !refundable.ok();
      return claimed;
    }
    return absl::AbortedError("too many concurrent writers on the original payment; retry");
  });
}

absl::Status RedisStore::Abandon(absl::string_view merchant_transaction_id) {
  return WithConnection([&](Connection& connection) -> absl::Status {
    const std::string key = TxKey(merchant_transaction_id);
    absl::StatusOr<Reply> stored = connection.Run({"HMGET", key, "data", "refunded"});
    if (!stored.ok()) return stored.status();
    if ((*stored)->element[0]->type == REDIS_REPLY_NIL) return absl::OkStatus();
    absl::StatusOr<v1::Transaction> transaction =
        Decode((*stored)->element[0], (*stored)->element[1]);
    if (!transaction.ok()) return transaction.status();
    std::vector<std::vector<std::string>> commands = {
        {"MULTI"},
        {"DEL", key},
        {"ZREM", WatchKey(), std::string(merchant_transaction_id)},
        {"ZREM", UnknownWatchKey(), std::string(merchant_transaction_id)}};
    if (transaction->type() == v1::TRANSACTION_TYPE_REFUND) {
      commands.push_back({"HINCRBY", TxKey(transaction->original_merchant_transaction_id()),
                          "reserved", std::to_string(-transaction->amount_minor())});
    }
    commands.push_back({"EXEC"});
    return connection.Pipeline(commands).status();
  });
}

absl::StatusOr<v1::Transaction> RedisStore::Get(absl::string_view merchant_transaction_id) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<v1::Transaction> {
    absl::StatusOr<Reply> stored =
        connection.Run({"HMGET", TxKey(merchant_transaction_id), "data", "refunded"});
    if (!stored.ok()) return stored.status();
    if ((*stored)->element[0]->type == REDIS_REPLY_NIL) {
      return absl::NotFoundError(
          absl::StrCat("no transaction with merchant_transaction_id ", merchant_transaction_id));
    }
    return Decode((*stored)->element[0], (*stored)->element[1]);
  });
}

absl::StatusOr<std::vector<std::optional<v1::Transaction>>> RedisStore::GetMany(
    const std::vector<std::string>& ids) {
  std::vector<std::optional<v1::Transaction>> found;
  if (ids.empty()) return found;
  // A record is a hash (its refunded amount lives beside it), so MGET cannot read it. The HMGETs
  // Get would send go out pipelined instead: one round trip for all, each record read whole, and
  // Redis free to serve other clients between them, which one Lua script over up to 1,000 keys
  // would not let it.
  std::vector<std::vector<std::string>> commands;
  commands.reserve(ids.size());
  for (const std::string& id : ids) commands.push_back({"HMGET", TxKey(id), "data", "refunded"});
  return WithConnection(
      [&](Connection& connection) -> absl::StatusOr<std::vector<std::optional<v1::Transaction>>> {
        absl::StatusOr<std::vector<Reply>> replies = connection.PipelineAll(commands);
        if (!replies.ok()) return replies.status();
        found.reserve(ids.size());
        for (size_t i = 0; i < ids.size(); ++i) {
          const redisReply* fields = (*replies)[i].get();
          if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 2) {
            return absl::InternalError("redis: unexpected answer to HMGET");
          }
          if (fields->element[0]->type == REDIS_REPLY_NIL) {
            found.emplace_back(std::nullopt);
            continue;
          }
          absl::StatusOr<v1::Transaction> transaction =
              Decode(fields->element[0], fields->element[1]);
          if (!transaction.ok()) {
            return absl::DataLossError(
                absl::StrCat("stored transaction record of ", ids[i], " is unreadable"));
          }
          found.emplace_back(*std::move(transaction));
        }
        return std::move(found);
      });
}

absl::StatusOr<std::string> RedisStore::FindByGatewayUuid(absl::string_view uuid) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<std::string> {
    absl::StatusOr<Reply> found = connection.Run({"GET", UuidKey(uuid)});
    if (!found.ok()) return found.status();
    if ((*found)->type == REDIS_REPLY_NIL) {
      return absl::NotFoundError(absl::StrCat("no transaction with gateway_uuid ", uuid));
    }
    return ReplyString(found->get());
  });
}

absl::StatusOr<ApplyResult> RedisStore::Apply(absl::string_view merchant_transaction_id,
                                              const Report& report) {
  return ApplyWith(merchant_transaction_id, report, nullptr);
}

absl::StatusOr<ApplyResult> RedisStore::ApplyCallback(absl::string_view merchant_transaction_id,
                                                      const Report& report,
                                                      const CallbackApply& callback) {
  return ApplyWith(merchant_transaction_id, report, &callback);
}

absl::StatusOr<ApplyResult> RedisStore::ApplyWith(absl::string_view merchant_transaction_id,
                                                  const Report& report,
                                                  const CallbackApply* callback) {
  // Compare-and-set through WATCH: read the record, let core::PlanReport judge the report, and
  // write its plan in one MULTI/EXEC only if nobody wrote the record in between; otherwise judge
  // again against the newer record. A callback's check judges the record read here (no read of its
  // own), and its handled mark goes in the same MULTI/EXEC (no round trip of its own, and never
  // stored without the outcome nor the outcome without it).
  std::optional<std::vector<std::string>> mark;
  if (callback != nullptr && !callback->signature.empty()) {
    mark = std::vector<std::string>{
        "SET", SightingKey(callback->signature), kSightingHandled, "PX",
        std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(callback->mark_ttl)))};
  }
  const std::string key = TxKey(merchant_transaction_id);
  const std::string id(merchant_transaction_id);
  return WithConnection([&](Connection& connection) -> absl::StatusOr<ApplyResult> {
    for (int round = 0; round < kMaxOptimisticRounds; ++round) {
      // WATCH and the read in one round trip: Redis runs a connection's commands in the order
      // sent, so the read still comes after WATCH and any later write to the key fails EXEC.
      absl::StatusOr<Reply> stored =
          connection.Pipeline({{"WATCH", key}, {"HMGET", key, "data", "refunded", "inflight"}});
      if (!stored.ok()) return stored.status();
      if ((*stored)->element[0]->type == REDIS_REPLY_NIL) {
        connection.Run({"UNWATCH"}).IgnoreError();
        return absl::NotFoundError(
            absl::StrCat("no transaction with merchant_transaction_id ", id));
      }
      core::Stored current;
      absl::StatusOr<v1::Transaction> record = Decode((*stored)->element[0], (*stored)->element[1]);
      if (!record.ok()) return record.status();
      current.record = *std::move(record);
      current.flight_deadline = FlightDeadline((*stored)->element[2]);

      ApplyResult result;
      Report refused;
      const Report* judged = &report;
      if (callback != nullptr && callback->check) {
        absl::StatusOr<std::string> why = callback->check(current.record);
        if (!why.ok()) {
          connection.Run({"UNWATCH"}).IgnoreError();
          return why.status();
        }
        if (!why->empty()) {
          refused = report;
          refused.refused_because = *why;
          judged = &refused;
          result.refused_because = *std::move(why);
        }
      }
      core::Plan plan = core::PlanReport(current, *judged, absl::Now());
      result.previous_status = current.record.status();
      result.status_changed = plan.status_changed;
      result.anomaly = plan.anomaly;
      if (plan.unchanged && !plan.next_check.has_value()) {
        // A repeat (Bankart retrying a callback answered 503) acknowledges what an earlier Apply
        // wrote, perhaps not yet replicated: a write of this connection's own (the mark, else the
        // record's usual expiry, as AwaitReplicasOfEarlierWrites), sent with UNWATCH in one round
        // trip, then WAIT covers every earlier write.
        std::vector<std::vector<std::string>> settle = {{"UNWATCH"}};
        if (mark.has_value()) {
          settle.push_back(*mark);
        } else if (min_replica_acks_ > 0) {
          settle.push_back(
              {"PEXPIRE", key, std::to_string(absl::ToInt64Milliseconds(config_.retention))});
        }
        absl::Status written = connection.Pipeline(settle).status();
        if (settle.size() > 1 && !written.ok()) return written;
        if (absl::Status durable = AwaitReplicas(connection); !durable.ok()) return durable;
        result.transaction = std::move(plan.next);
        return result;
      }
      if (plan.unchanged) {
        // Only the schedule moves; still under WATCH, so a status that changed meanwhile is judged
        // again rather than put back on the list.
        std::vector<std::vector<std::string>> commands = {
            {"MULTI"}, {"ZADD", WatchKeyFor(plan.next), Millis(*plan.next_check), id}};
        if (mark.has_value()) commands.push_back(*mark);
        commands.push_back({"EXEC"});
        absl::StatusOr<Reply> executed = connection.Pipeline(commands);
        if (!executed.ok()) return executed.status();
        if ((*executed)->type == REDIS_REPLY_NIL) continue;
        result.transaction = std::move(plan.next);
        return result;
      }

      const std::string ttl = std::to_string(absl::ToInt64Milliseconds(config_.retention));
      std::vector<std::vector<std::string>> commands = {
          {"MULTI"},
          {"HSET", key, "data", EncodeRecord(plan.next), "inflight",
           plan.flight_deadline == absl::InfinitePast() ? "0" : Millis(plan.flight_deadline)},
          {"PEXPIRE", key, ttl}};
      if (mark.has_value()) commands.push_back(*mark);
      if (plan.next_check.has_value()) {
        // An UNKNOWN outcome waits on a list of its own, read first: a crowd of open requests to
        // pay cannot push it back.
        const std::string target = WatchKeyFor(plan.next);
        commands.push_back({"ZADD", target, Millis(*plan.next_check), id});
        commands.push_back({"ZREM", target == WatchKey() ? UnknownWatchKey() : WatchKey(), id});
      } else {
        commands.push_back({"ZREM", WatchKey(), id});
        commands.push_back({"ZREM", UnknownWatchKey(), id});
      }
      if (plan.new_gateway_uuid.has_value()) {
        commands.push_back({"SET", UuidKey(*plan.new_gateway_uuid), id, "PX", ttl});
      }
      if (plan.refund_delta.has_value()) {
        const core::RefundDelta& delta = *plan.refund_delta;
        const std::string original_key = TxKey(delta.original_merchant_transaction_id);
        if (delta.refunded != 0) {
          commands.push_back({"HINCRBY", original_key, "refunded", std::to_string(delta.refunded)});
        }
        if (delta.reserved != 0) {
          commands.push_back({"HINCRBY", original_key, "reserved", std::to_string(delta.reserved)});
        }
      }
      if (plan.event.has_value()) {
        commands.push_back({"XADD", EventsKey(), "MAXLEN", "~", std::to_string(config_.max_events),
                            "*", "e", EncodeEvent(*plan.event)});
      } else if (config_.change_notices && core::NeedsChangeNotice(current, plan)) {
        // A cached (final) record changed without an event: tell every replica's cache, in the
        // same stream (so in the same order as the events), under a field no reader of events
        // takes ("c", the id).
        commands.push_back(
            {"XADD", EventsKey(), "MAXLEN", "~", std::to_string(config_.max_events), "*", "c", id});
      }
      commands.push_back({"EXEC"});
      absl::StatusOr<Reply> executed = connection.Pipeline(commands);
      if (!executed.ok()) return executed.status();
      if ((*executed)->type == REDIS_REPLY_NIL) {
        continue;  // a concurrent writer won; judge again
      }
      if (absl::Status durable = AwaitReplicas(connection); !durable.ok()) return durable;
      if (plan.event.has_value()) {
        result.event_cursor = ReplyString((*executed)->element[(*executed)->elements - 1]);
        SawCursor(result.event_cursor);
      }
      result.transaction = std::move(plan.next);
      return result;
    }
    return absl::AbortedError("too many concurrent writers on the transaction; retry");
  });
}

absl::Status RedisStore::RecordUnmatchedCallback(absl::string_view body) {
  return WithConnection([&](Connection& connection) -> absl::Status {
    const std::string key = UnmatchedKey();
    absl::StatusOr<Reply> pushed = connection.Run({"LPUSH", key, std::string(body)});
    if (!pushed.ok()) return pushed.status();
    if (absl::Status s = connection.Run({"LTRIM", key, "0", "9999"}).status(); !s.ok()) return s;
    // Bounded in number and in time: the newest 10,000, gone after the retention period.
    return connection
        .Run({"PEXPIRE", key, std::to_string(absl::ToInt64Milliseconds(config_.retention))})
        .status();
  });
}

absl::StatusOr<Sighting> RedisStore::SightCallback(absl::string_view signature,
                                                   absl::Duration handling_lease) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<Sighting> {
    const std::string key = SightingKey(signature);
    absl::StatusOr<Reply> seen = connection.Run(
        {"EVAL", kSightCallbackScript, "1", key,
         std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(handling_lease)))});
    if (!seen.ok()) return seen.status();
    if ((*seen)->type == REDIS_REPLY_NIL) return Sighting::kFirst;
    if (ReplyString(seen->get()) == kSightingHandling) return Sighting::kHandling;
    // A repeat is answered 200 as handled: what handling it the first time wrote must be on the
    // replicas by then (the first answer may have been a 503 for want of them). WAIT counts up to
    // this connection's own last write, and the sighting script wrote nothing, so the connection
    // first writes the key itself (kTouchSightingScript: a write whether the key has an expiry,
    // none, or has just expired), which, replication being in order, WAIT then covers with every
    // earlier write.
    if (min_replica_acks_ > 0) {
      absl::StatusOr<Reply> touched = connection.Run(
          {"EVAL", kTouchSightingScript, "1", key,
           std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(handling_lease)))});
      if (!touched.ok()) return touched.status();
      if (absl::Status durable = AwaitReplicas(connection); !durable.ok()) return durable;
    }
    return Sighting::kHandled;
  });
}

absl::Status RedisStore::MarkCallbackHandled(absl::string_view signature, absl::Duration ttl) {
  return WithConnection([&](Connection& connection) -> absl::Status {
    return connection
        .Run({"SET", SightingKey(signature), kSightingHandled, "PX",
              std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl)))})
        .status();
  });
}

absl::Status RedisStore::ForgetSighting(absl::string_view signature) {
  return WithConnection([&](Connection& connection) -> absl::Status {
    return connection.Run({"DEL", SightingKey(signature)}).status();
  });
}

namespace {

// Stream entries as read by XRANGE or XREAD: events (field "e"), change notices (field "c", the id
// of a record that changed without an event) and the last entry's id. Releases before notices
// cannot follow a stream that ends in one, so notices are written only with
// RedisConfig::change_notices, once every replica runs a release that reads them.
absl::StatusOr<StreamRead> DecodeEntries(const redisReply* entries) {
  StreamRead read;
  if (entries == nullptr || entries->type != REDIS_REPLY_ARRAY) return read;
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* entry = entries->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    read.last_cursor = ReplyString(entry->element[0]);
    const redisReply* fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) continue;
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
      const std::string name = ReplyString(fields->element[f]);
      const redisReply* value = fields->element[f + 1];
      if (name == "c") {
        read.changed_ids.push_back(ReplyString(value));
        continue;
      }
      if (name != "e") continue;
      absl::StatusOr<v1::StatusEvent> event =
          DecodeEvent(absl::string_view(value->str, value->len), read.last_cursor);
      if (!event.ok()) return event.status();
      read.events.push_back(*std::move(event));
    }
  }
  return read;
}

}  // namespace

absl::StatusOr<StreamRead> RedisStore::Seen(absl::StatusOr<StreamRead> read) {
  if (read.ok() && !read->last_cursor.empty()) SawCursor(read->last_cursor);
  return read;
}

absl::StatusOr<std::vector<v1::StatusEvent>> RedisStore::ReadEvents(absl::string_view after_cursor,
                                                                    int max_count) {
  return WithConnection(
      [&](Connection& connection) -> absl::StatusOr<std::vector<v1::StatusEvent>> {
        // Change notices take room in a page of entries without being events: read on until
        // `max_count` events or the stream's end, so a short answer still means "no more" (a
        // replay ends on a short page).
        std::vector<v1::StatusEvent> events;
        std::string after(after_cursor);
        while (static_cast<int>(events.size()) < max_count) {
          const int wanted = max_count - static_cast<int>(events.size());
          absl::StatusOr<Reply> reply =
              connection.Run({"XRANGE", EventsKey(), after.empty() ? "-" : absl::StrCat("(", after),
                              "+", "COUNT", std::to_string(wanted)});
          if (!reply.ok()) return reply.status();
          absl::StatusOr<StreamRead> read = Seen(DecodeEntries(reply->get()));
          if (!read.ok()) return read.status();
          for (v1::StatusEvent& event : read->events) events.push_back(std::move(event));
          if (read->last_cursor.empty() || static_cast<int>((*reply)->elements) < wanted) break;
          after = read->last_cursor;
        }
        return events;
      });
}

absl::StatusOr<std::vector<v1::StatusEvent>> RedisStore::WaitForEvents(
    absl::string_view after_cursor, int max_count, absl::Duration wait) {
  // Entries that are only notices are no answer: read on past them until an event or the wait's
  // end, so a caller that loops on this never spins on notices.
  const absl::Time deadline = absl::Now() + wait;
  std::string after(after_cursor);
  while (true) {
    absl::StatusOr<StreamRead> read =
        WaitForChanges(after, max_count, std::max(absl::Milliseconds(1), deadline - absl::Now()));
    if (!read.ok()) return read.status();
    if (!read->events.empty() || read->last_cursor.empty() || absl::Now() >= deadline) {
      return std::move(read->events);
    }
    after = read->last_cursor;
  }
}

absl::StatusOr<int64_t> RedisStore::DropChangeNotices() {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<int64_t> {
    int64_t dropped = 0;
    std::string after = "-";
    while (true) {
      absl::StatusOr<Reply> page =
          connection.Run({"XRANGE", EventsKey(), after, "+", "COUNT", "1000"});
      if (!page.ok()) return page.status();
      const redisReply* entries = page->get();
      if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) return dropped;
      std::vector<std::string> command = {"XDEL", EventsKey()};
      for (size_t i = 0; i < entries->elements; ++i) {
        const redisReply* entry = entries->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
        after = absl::StrCat("(", ReplyString(entry->element[0]));
        const redisReply* fields = entry->element[1];
        if (fields->type == REDIS_REPLY_ARRAY && fields->elements >= 2 &&
            ReplyString(fields->element[0]) == "c") {
          command.push_back(ReplyString(entry->element[0]));
        }
      }
      if (command.size() > 2) {
        absl::StatusOr<Reply> deleted = connection.Run(command);
        if (!deleted.ok()) return deleted.status();
        dropped += ReplyInt(deleted->get());
      }
      if (entries->elements < 1000) return dropped;
    }
  });
}

absl::StatusOr<StreamRead> RedisStore::WaitForChanges(absl::string_view after_cursor, int max_count,
                                                      absl::Duration wait) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<StreamRead> {
    // The socket must outlast the server-side block.
    connection.SetTimeout(wait + config_.command_timeout);
    absl::StatusOr<Reply> reply =
        connection.Run({"XREAD", "COUNT", std::to_string(max_count), "BLOCK",
                        std::to_string(absl::ToInt64Milliseconds(wait)), "STREAMS", EventsKey(),
                        after_cursor.empty() ? "0-0" : std::string(after_cursor)});
    connection.SetTimeout(config_.command_timeout);
    if (!reply.ok()) return reply.status();
    if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements == 0) return StreamRead();
    const redisReply* stream = (*reply)->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) return StreamRead();
    return Seen(DecodeEntries(stream->element[1]));
  });
}

// A connection is taken from the pool only while its generation is the current one, and a new one
// takes the current one: a call made between two equal readings of it was served in it.
uint64_t RedisStore::PrimaryGeneration() {
  absl::MutexLock lock(&mutex_);
  return generation_;
}

absl::StatusOr<std::string> RedisStore::LatestCursor() {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<std::string> {
    absl::StatusOr<Reply> reply =
        connection.Run({"XREVRANGE", EventsKey(), "+", "-", "COUNT", "1"});
    if (!reply.ok()) return reply.status();
    if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements == 0) return std::string("0-0");
    std::string latest = ReplyString((*reply)->element[0]->element[0]);
    SawCursor(latest);
    return latest;
  });
}

absl::StatusOr<std::vector<std::string>> RedisStore::DueForCheck(absl::Time now, int max_count) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<std::vector<std::string>> {
    std::vector<std::string> ids;
    // Unknown outcomes first, then the rest, oldest first in each.
    for (const std::string& key : {UnknownWatchKey(), WatchKey()}) {
      const int left = max_count - static_cast<int>(ids.size());
      if (left <= 0) break;
      absl::StatusOr<Reply> reply = connection.Run(
          {"ZRANGEBYSCORE", key, "-inf", Millis(now), "LIMIT", "0", std::to_string(left)});
      if (!reply.ok()) return reply.status();
      for (size_t i = 0; i < (*reply)->elements; ++i) {
        ids.push_back(ReplyString((*reply)->element[i]));
      }
    }
    return ids;
  });
}

absl::Status RedisStore::ScheduleCheck(absl::string_view merchant_transaction_id, absl::Time when) {
  return WithConnection([&](Connection& connection) -> absl::Status {
    const std::string id(merchant_transaction_id);
    if (when == absl::InfiniteFuture()) {
      return connection.Pipeline({{"ZREM", WatchKey(), id}, {"ZREM", UnknownWatchKey(), id}})
          .status();
    }
    // XX: only on the list it is on (a final one was removed by Apply).
    return connection
        .Pipeline({{"ZADD", WatchKey(), "XX", Millis(when), id},
                   {"ZADD", UnknownWatchKey(), "XX", Millis(when), id}})
        .status();
  });
}

absl::StatusOr<bool> RedisStore::TryLease(absl::string_view merchant_transaction_id,
                                          absl::string_view owner, absl::Duration ttl) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<bool> {
    // Only while it is still due: a replica working from a list read before another replica
    // checked and rescheduled it must not check it again.
    static constexpr char kLeaseIfDue[] = R"lua(
local due = redis.call('ZSCORE', KEYS[2], ARGV[1]) or redis.call('ZSCORE', KEYS[3], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[4]) then return 0 end
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
)lua";
    const std::string id(merchant_transaction_id);
    absl::StatusOr<Reply> reply = connection.Run(
        {"EVAL", kLeaseIfDue, "3", LeaseKey(id), UnknownWatchKey(), WatchKey(), id,
         std::string(owner), std::to_string(absl::ToInt64Milliseconds(ttl)), Millis(absl::Now())});
    if (!reply.ok()) return reply.status();
    return (*reply)->integer == 1;
  });
}

absl::Status RedisStore::ReleaseLease(absl::string_view merchant_transaction_id,
                                      absl::string_view owner) {
  // Compare-and-delete: a lease that expired and was taken by another replica stays theirs.
  static constexpr char kRelease[] = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";
  return WithConnection([&](Connection& connection) -> absl::Status {
    return connection
        .Run({"EVAL", kRelease, "1", LeaseKey(merchant_transaction_id), std::string(owner)})
        .status();
  });
}

absl::StatusOr<QueryTake> RedisStore::TakeStatusQuery(int limit, absl::Duration window) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<QueryTake> {
    // The member must be unique within a microsecond across replicas and connections.
    const std::string nonce = std::to_string(query_nonce_.fetch_add(1)) + "@" + nonce_prefix_;
    absl::StatusOr<Reply> granted =
        connection.Run({"EVAL", kTakeQueryScript, "1", StatusQuotaKey(),
                        std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(window))),
                        std::to_string(limit), nonce});
    if (!granted.ok()) return granted.status();
    if ((*granted)->type != REDIS_REPLY_ARRAY || (*granted)->elements != 2) {
      return absl::InternalError("redis: the status quota script answered unexpectedly");
    }
    return QueryTake{(*granted)->element[0]->integer == 1,
                     static_cast<int>((*granted)->element[1]->integer)};
  });
}

absl::StatusOr<int> RedisStore::StatusQueriesInWindow(absl::Duration window) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<int> {
    absl::StatusOr<Reply> counted =
        connection.Run({"EVAL", kCountQueriesScript, "1", StatusQuotaKey(),
                        std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(window)))});
    if (!counted.ok()) return counted.status();
    return static_cast<int>((*counted)->integer);
  });
}

namespace {

absl::Status CheckSpendArguments(int64_t amount_minor, int64_t limit_minor, absl::Duration window) {
  if (amount_minor <= 0) return absl::InvalidArgumentError("spend: the amount must be positive");
  if (limit_minor < 0) return absl::InvalidArgumentError("spend: the limit must not be negative");
  if (window < absl::Milliseconds(1) || window > kMaxSpendWindow) {
    return absl::InvalidArgumentError(absl::StrCat("spend: the window must be from 1 ms to ",
                                                   absl::FormatDuration(kMaxSpendWindow)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SpendResult> RedisStore::ReserveSpend(absl::string_view caller,
                                                     absl::string_view rpc, int64_t amount_minor,
                                                     int64_t limit_minor, absl::Duration window) {
  if (absl::Status valid = CheckSpendArguments(amount_minor, limit_minor, window); !valid.ok()) {
    return valid;
  }
  return WithConnection([&](Connection& connection) -> absl::StatusOr<SpendResult> {
    absl::StatusOr<Reply> reply = connection.Run(
        {"EVAL", kReserveSpendScript, "1", SpendKey(caller, rpc), std::to_string(amount_minor),
         std::to_string(limit_minor), std::to_string(absl::ToInt64Milliseconds(window))});
    if (!reply.ok()) return reply.status();
    const redisReply* answer = reply->get();
    SpendResult result;
    if (answer->type != REDIS_REPLY_ARRAY || answer->elements != 3 ||
        !absl::SimpleAtoi(ReplyString(answer->element[1]), &result.spent_minor)) {
      return absl::InternalError("redis: unexpected answer to the spend script");
    }
    result.granted = ReplyInt(answer->element[0]) == 1;
    if (result.granted) {
      result.reserved_at = absl::FromUnixMillis(ReplyInt(answer->element[2]));
      // A reservation lost in a failover would let the caller spend past its limit. One the
      // replicas did not acknowledge stays counted on this primary (the safe side).
      if (absl::Status durable = AwaitReplicas(connection); !durable.ok()) return durable;
    }
    return result;
  });
}

absl::Status RedisStore::ReleaseSpend(absl::string_view caller, absl::string_view rpc,
                                      int64_t amount_minor, absl::Time reserved_at,
                                      absl::Duration window) {
  if (absl::Status valid = CheckSpendArguments(amount_minor, 0, window); !valid.ok()) {
    return valid;
  }
  return WithConnection([&](Connection& connection) -> absl::Status {
    return connection
        .Run({"EVAL", kReleaseSpendScript, "1", SpendKey(caller, rpc), std::to_string(amount_minor),
              Millis(reserved_at), std::to_string(absl::ToInt64Milliseconds(window))})
        .status();
  });
}

absl::StatusOr<Store::Backlog> RedisStore::CheckBacklog(absl::Time now) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<Store::Backlog> {
    Backlog backlog;
    for (const std::string& key : {UnknownWatchKey(), WatchKey()}) {
      absl::StatusOr<Reply> due = connection.Run({"ZCOUNT", key, "-inf", Millis(now)});
      if (!due.ok()) return due.status();
      backlog.due += (*due)->integer;
      absl::StatusOr<Reply> oldest = connection.Run({"ZRANGE", key, "0", "0", "WITHSCORES"});
      if (!oldest.ok()) return oldest.status();
      if ((*oldest)->elements == 2) {
        const absl::Time first = absl::FromUnixMillis(ReplyInt((*oldest)->element[1]));
        if (first < now) backlog.oldest = std::max(backlog.oldest, now - first);
      }
    }
    return backlog;
  });
}

// A cursor resumes only from its own entry: every entry after one that is kept is kept too
// (trimming takes the oldest first; DropChangeNotices deletes only notices, never an event, and no
// cursor handed to a subscriber is a notice's). A cursor whose entry is not in the
// stream was trimmed away, or was never on this primary: the tail of the stream a failed primary
// had not passed on to the replica promoted in its place (or a Redis restarted without its last
// second of AOF). Resuming after it would skip whatever the new primary wrote below it, and the
// old events after it are gone: OUT_OF_RANGE, never a silent gap. The start of the stream ("0-0")
// resumes while nothing was trimmed.
absl::StatusOr<bool> RedisStore::CanResumeFrom(absl::string_view cursor) {
  return WithConnection([&](Connection& connection) -> absl::StatusOr<bool> {
    const std::string key = EventsKey();
    const std::optional<core::Cursor> parsed = core::ParseCursor(cursor);
    if (parsed.has_value() && *parsed != core::Cursor{}) {
      absl::StatusOr<Reply> own =
          connection.Run({"XRANGE", key, std::string(cursor), std::string(cursor)});
      if (!own.ok()) return own.status();
      return (*own)->type == REDIS_REPLY_ARRAY && (*own)->elements > 0;
    }
    absl::StatusOr<Reply> info = connection.Run({"XINFO", "STREAM", key});
    if (!info.ok()) {
      if (absl::IsInternal(info.status())) return true;  // no stream yet
      return info.status();
    }
    int64_t length = 0, added = 0;
    for (size_t i = 0; i + 1 < (*info)->elements; i += 2) {
      const std::string field = ReplyString((*info)->element[i]);
      const redisReply* value = (*info)->element[i + 1];
      if (field == "length") length = ReplyInt(value);
      if (field == "entries-added") added = ReplyInt(value);
    }
    return added <= length;  // nothing trimmed
  });
}

absl::Status RedisStore::Ping() {
  return WithConnection(
      [&](Connection& connection) -> absl::Status { return connection.Run({"PING"}).status(); });
}

}  // namespace flikpay::store
