// FLIKPAY_REDIS_URL as operators write it: credentials, IPv6 hosts and percent-escapes read as
// meant, and every URL the parser cannot read is refused, saying why without quoting a password.
#include <string>

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

}  // namespace
}  // namespace flikpay::store
