// FLIKPAY_REDIS_URL as operators write it: credentials, IPv6 hosts and percent-escapes read as
// meant, and every URL the parser cannot read is refused, saying why without quoting a password.
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "store/redis_store.h"

namespace flikpay::store {
namespace {

RedisEndpoint Parsed(const std::string& url) {
  absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(url);
  EXPECT_TRUE(endpoint.ok()) << url << ": " << endpoint.status();
  return endpoint.value_or(RedisEndpoint{});
}

// The refusal's message, after checking it is INVALID_ARGUMENT.
std::string Refusal(const std::string& url) {
  absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(url);
  EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kInvalidArgument) << url;
  return std::string(endpoint.status().message());
}

TEST(RedisUrlTest, PasswordAloneIsTheDefaultUsers) {
  // This one used to read as 127.0.0.1:6379 without a password.
  const RedisEndpoint endpoint = Parsed("redis://:secret@host:16399/0");
  EXPECT_EQ(endpoint.host, "host");
  EXPECT_EQ(endpoint.port, 16399);
  EXPECT_EQ(endpoint.database, 0);
  EXPECT_EQ(endpoint.username, "");
  EXPECT_EQ(endpoint.password, "secret");
}

TEST(RedisUrlTest, UserAndPassword) {
  const RedisEndpoint endpoint = Parsed("redis://alice:s3cret@redis.internal:6380/2");
  EXPECT_EQ(endpoint.username, "alice");
  EXPECT_EQ(endpoint.password, "s3cret");
  EXPECT_EQ(endpoint.host, "redis.internal");
  EXPECT_EQ(endpoint.port, 6380);
  EXPECT_EQ(endpoint.database, 2);
}

TEST(RedisUrlTest, CredentialsArePercentDecoded) {
  const RedisEndpoint endpoint = Parsed("redis://al%69ce:p%40ss%3aw%2Frd%25%20x@host");
  EXPECT_EQ(endpoint.username, "alice");
  EXPECT_EQ(endpoint.password, "p@ss:w/rd% x");
  EXPECT_EQ(endpoint.host, "host");
}

TEST(RedisUrlTest, APasswordMayHoldUnescapedSeparators) {
  // Only the last '@' ends the credentials, and only the first ':' ends the user.
  const RedisEndpoint endpoint = Parsed("redis://bob:p@ss:w/rd@host:6390/3");
  EXPECT_EQ(endpoint.username, "bob");
  EXPECT_EQ(endpoint.password, "p@ss:w/rd");
  EXPECT_EQ(endpoint.host, "host");
  EXPECT_EQ(endpoint.port, 6390);
  EXPECT_EQ(endpoint.database, 3);
}

TEST(RedisUrlTest, Ipv6HostsInBrackets) {
  RedisEndpoint endpoint = Parsed("redis://[::1]:6380/1");
  EXPECT_EQ(endpoint.host, "::1");
  EXPECT_EQ(endpoint.port, 6380);
  EXPECT_EQ(endpoint.database, 1);
  endpoint = Parsed("redis://:pw@[2001:db8::7]");
  EXPECT_EQ(endpoint.host, "2001:db8::7");
  EXPECT_EQ(endpoint.port, 6379);
  EXPECT_EQ(endpoint.password, "pw");
  endpoint = Parsed("redis://[::ffff:10.0.0.1]/4");
  EXPECT_EQ(endpoint.host, "::ffff:10.0.0.1");
  EXPECT_EQ(endpoint.database, 4);
}

TEST(RedisUrlTest, WhatIsLeftOutHasItsDefault) {
  for (const std::string url : {"redis://", "redis:///", "redis://127.0.0.1", "REDIS://:6379/0"}) {
    const RedisEndpoint endpoint = Parsed(url);
    EXPECT_EQ(endpoint.host, "127.0.0.1") << url;
    EXPECT_EQ(endpoint.port, 6379) << url;
    EXPECT_EQ(endpoint.database, 0) << url;
    EXPECT_EQ(endpoint.password, "") << url;
  }
  EXPECT_EQ(Parsed("redis://flikpay-redis").host, "flikpay-redis");
}

TEST(RedisUrlTest, BadPorts) {
  for (const std::string url :
       {"redis://host:0", "redis://host:65536", "redis://host:99999999999", "redis://host:abc",
        "redis://host:", "redis://host:+1", "redis://host: 1", "redis://host:-1/0",
        "redis://[::1]:x", "redis://:pw@host:6379x/0"}) {
    EXPECT_NE(Refusal(url).find("port"), std::string::npos) << url;
  }
}

TEST(RedisUrlTest, BadDatabases) {
  for (const std::string url : {"redis://host/x", "redis://host/-1", "redis://host/1/2",
                                "redis://host/ 1", "redis://host/99999999999"}) {
    EXPECT_NE(Refusal(url).find("database"), std::string::npos) << url;
  }
}

TEST(RedisUrlTest, GarbageIsRefused) {
  for (const std::string url : {
           "",
           "127.0.0.1:6379",
           "http://host:6379",
           "redis:/host",
           "unix:///var/run/redis.sock",
           "redis://ho st",
           "redis://host_ü",
           "redis://::1:6379",     // IPv6 without brackets
           "redis://[::1",         // no closing bracket
           "redis://[::1]6379",    // no ':' before the port
           "redis://[zz]",         // not IPv6
           "redis://[]",           //
           "redis://alice@host",   // a user without a password
           "redis://@host",        // nothing before '@'
           "redis://alice:@host",  // an empty password
           "redis://:p%4@host",    // a truncated escape
           "redis://:p%zz@host",   // not hex
           "redis://host/0?timeout=1",
           "redis://host#x",
       }) {
    EXPECT_FALSE(Refusal(url).empty()) << url;
  }
}

TEST(RedisUrlTest, TlsIsRefusedPlainly) {
  const std::string message = Refusal("rediss://:hunter2@host:6380/0");
  EXPECT_NE(message.find("rediss://"), std::string::npos) << message;
  EXPECT_NE(message.find("TLS"), std::string::npos) << message;
  EXPECT_NE(Refusal("REDISS://host").find("TLS"), std::string::npos);
}

TEST(RedisUrlTest, NoRefusalQuotesThePassword) {
  // Each one a typo that leaves the password somewhere the parser looks for something else.
  for (const std::string url : {
           "redis://:hunter2",
           "redis://hunter2",
           "redis://:hunter2@host:x",
           "redis://alice:hunter2%zz@host",
           "redis://alice:hunter2@ho st",
           "redis://alice:hunter2@host/db",
           "redis://alice:hunter2@host?x",
           "rediss://alice:hunter2@host",
           "http://alice:hunter2@host",
           "redis://host:hunter2",
           "redis://host/hunter2",
           "redis://hunter2:hunter2:6379",
       }) {
    absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(url);
    if (endpoint.ok()) continue;  // "redis://hunter2" is a host name
    EXPECT_EQ(endpoint.status().message().find("hunter2"), absl::string_view::npos)
        << url << ": " << endpoint.status();
  }
}

TEST(RedisUrlTest, PlainUrlsNameNoSentinel) {
  const RedisEndpoint endpoint = Parsed("redis://:pw@host:6380/2");
  EXPECT_FALSE(endpoint.uses_sentinel());
  EXPECT_TRUE(endpoint.master_name.empty());
}

TEST(RedisUrlTest, SentinelUrls) {
  struct Case {
    std::string url;
    std::vector<RedisAddress> sentinels;
    std::string master;
    int database;
    std::string username, password, sentinel_password;
  };
  const std::vector<Case> cases = {
      {"redis-sentinel://s1:26379,s2:26380,s3:26381/mymaster",
       {{"s1", 26379}, {"s2", 26380}, {"s3", 26381}},
       "mymaster",
       0,
       "",
       "",
       ""},
      {"redis-sentinel://10.0.0.1/flik-pay_1.main/3",
       {{"10.0.0.1", 26379}},
       "flik-pay_1.main",
       3,
       "",
       "",
       ""},
      {"REDIS-SENTINEL://:pw@[::1]:5000,[2001:db8::7],host/m",
       {{"::1", 5000}, {"2001:db8::7", 26379}, {"host", 26379}},
       "m",
       0,
       "",
       "pw",
       ""},
      {"redis-sentinel://alice:p@ss:w/rd@s1:1,s2:2/m/1",
       {{"s1", 1}, {"s2", 2}},
       "m",
       1,
       "alice",
       "p@ss:w/rd",
       ""},
      {"redis-sentinel://:p%40w@s1:1/m?sentinel_password=s%26p%3Dx",
       {{"s1", 1}},
       "m",
       0,
       "",
       "p@w",
       "s&p=x"},
      {"redis-sentinel://s1:1/m/2?sentinel_password=sp", {{"s1", 1}}, "m", 2, "", "", "sp"},
  };
  for (const Case& c : cases) {
    const RedisEndpoint endpoint = Parsed(c.url);
    EXPECT_TRUE(endpoint.uses_sentinel()) << c.url;
    EXPECT_EQ(endpoint.sentinels, c.sentinels) << c.url;
    EXPECT_EQ(endpoint.master_name, c.master) << c.url;
    EXPECT_EQ(endpoint.database, c.database) << c.url;
    EXPECT_EQ(endpoint.username, c.username) << c.url;
    EXPECT_EQ(endpoint.password, c.password) << c.url;
    EXPECT_EQ(endpoint.sentinel_password, c.sentinel_password) << c.url;
  }
}

// The query comes off before the credentials are looked for (they end at the last '@'): an
// unescaped '@' (or '/') in the sentinel_password is the sentinels' password, not the end of the
// data nodes' credentials (which gave "no master name"); a '?' in the data nodes' password stays
// theirs.
TEST(RedisUrlTest, AnUnescapedAtInTheSentinelPasswordStaysInIt) {
  struct Case {
    std::string url;
    std::vector<RedisAddress> sentinels;
    std::string master;
    int database;
    std::string username, password, sentinel_password;
  };
  const std::vector<Case> cases = {
      {"redis-sentinel://s1:1/m?sentinel_password=p@ss", {{"s1", 1}}, "m", 0, "", "", "p@ss"},
      {"redis-sentinel://alice:a@b@s1:1,s2/m/2?sentinel_password=x@y/z",
       {{"s1", 1}, {"s2", 26379}},
       "m",
       2,
       "alice",
       "a@b",
       "x@y/z"},
      {"redis-sentinel://alice:p?w@s1/m", {{"s1", 26379}}, "m", 0, "alice", "p?w", ""},
      {"redis-sentinel://alice:p?w@s1/m?sentinel_password=q?@r",
       {{"s1", 26379}},
       "m",
       0,
       "alice",
       "p?w",
       "q?@r"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<RedisEndpoint> parsed = ParseRedisUrl(c.url);
    ASSERT_TRUE(parsed.ok()) << c.url << ": " << parsed.status();
    const RedisEndpoint& endpoint = *parsed;
    EXPECT_TRUE(endpoint.uses_sentinel()) << c.url;
    EXPECT_EQ(endpoint.sentinels, c.sentinels) << c.url;
    EXPECT_EQ(endpoint.master_name, c.master) << c.url;
    EXPECT_EQ(endpoint.database, c.database) << c.url;
    EXPECT_EQ(endpoint.username, c.username) << c.url;
    EXPECT_EQ(endpoint.password, c.password) << c.url;
    EXPECT_EQ(endpoint.sentinel_password, c.sentinel_password) << c.url;
  }
}

TEST(RedisUrlTest, BadSentinelUrlsSayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"redis-sentinel://s1:26379", "no master name"},
      {"redis-sentinel://s1:26379/", "no master name"},
      {"redis-sentinel://s1:26379//1", "no master name"},
      {"redis-sentinel:///m", "empty sentinel address"},
      {"redis-sentinel://s1,,s2/m", "empty sentinel address"},
      {"redis-sentinel://s1,/m", "empty sentinel address"},
      {"redis-sentinel://:1/m", "has no host"},
      {"redis-sentinel://s1:0/m", "port"},
      {"redis-sentinel://s1:x/m", "port"},
      {"redis-sentinel://s1:1:2/m", "more than one ':'"},
      {"redis-sentinel://[::1/m", "no closing ']'"},
      {"redis-sentinel://s 1/m", "host"},
      {"redis-sentinel://s1/m a", "master name"},
      {"redis-sentinel://s1/m:x", "master name"},
      {"redis-sentinel://s1/m/x", "database"},
      {"redis-sentinel://s1/m/1/2", "database"},
      {"redis-sentinel://s1/m?timeout=1", "sentinel_password"},
      {"redis-sentinel://s1/m?sentinel_password=", "sentinel_password is empty"},
      {"redis-sentinel://s1/m?sentinel_password=a&b=c", "sentinel_password"},
      {"redis-sentinel://s1/m?sentinel_password=%zz", "malformed percent escape"},
      {"redis-sentinel://s1/m#x", "fragments"},
      {"redis-sentinel://alice@s1/m", "a user without a password"},
      {"redis-sentinel://@s1/m", "nothing between redis-sentinel:// and '@'"},
      {"redis-sentinel://alice:@s1/m", "password is empty"},
      {"redis-sentinels://s1/m", "must start with redis:// or redis-sentinel://"},
  };
  for (const auto& [url, says] : cases) {
    const std::string message = Refusal(url);
    EXPECT_NE(message.find(says), std::string::npos) << url << ": " << message;
  }
}

TEST(RedisUrlTest, NoSentinelRefusalQuotesAPassword) {
  for (const std::string url : {
           "redis-sentinel://:hunter2@s1",
           "redis-sentinel://hunter2",
           "redis-sentinel://:hunter2@s1:x/m",
           "redis-sentinel://alice:hunter2%zz@s1/m",
           "redis-sentinel://alice:hunter2@s 1/m",
           "redis-sentinel://alice:hunter2@s1/m/db",
           "redis-sentinel://s1:hunter2/m",
           "redis-sentinel://s1/hunter2/hunter2",
           "redis-sentinel://s1,hunter2:hunter2/m",
           "redis-sentinel://s1/m?sentinel_password=hunter2%zz",
           "redis-sentinel://s1/m?sentinel_password=hunter2&x",
           "redis-sentinel://s1/m?hunter2",
           "redis-sentinel://hunter2:hunter2:1/m",
       }) {
    absl::StatusOr<RedisEndpoint> endpoint = ParseRedisUrl(url);
    if (endpoint.ok()) continue;
    EXPECT_EQ(endpoint.status().message().find("hunter2"), absl::string_view::npos)
        << url << ": " << endpoint.status();
  }
}

}  // namespace
}  // namespace flikpay::store
