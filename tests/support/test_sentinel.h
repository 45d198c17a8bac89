// Redis as production runs it, on loopback for the store's failover tests: redis-server x3 (one
// primary, two replicas) and redis-sentinel x3 (quorum 2, down after 1 s, failover timeout
// 2 s) on free ports, their files in a temporary directory. Header-only like test_redis.h.
// Unlike production, no `min-replicas-to-write`: a primary cut off from its replicas would then
// refuse writes itself, and the tests are to show that flikpay's own WAIT keeps it from
// acknowledging what no replica holds. Down after 1 s, not less: with every test binary running
// at once on two cores (and under ASan), a sentinel must not take a slow primary for a dead one.
//
// Timing a test must allow for (redis 7's sentinel.c): a vote that elects no leader is retried
// only after 2 x failover-timeout (4 s here), so a SIGKILL failover takes ~1.5 s usually but
// 6-10 s now and then; and a primary that survives a failover (SENTINEL FAILOVER) is turned
// into a replica only after it has reported the stale role for 4 x the 2 s publish period (8 s),
// so that takes ~9-12 s always. Waits for either get 30 s.
#ifndef FLIKPAY_TESTS_SUPPORT_TEST_SENTINEL_H_
#define FLIKPAY_TESTS_SUPPORT_TEST_SENTINEL_H_

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/process.h"
#include "tests/support/test_redis.h"

namespace flikpay::testing {

// One command to 127.0.0.1:`port` on a connection of its own; the answer flattened to text (an
// array's elements one a line). nullopt when it cannot be asked or answers an error.
inline std::optional<std::string> AskRedis(int port, const std::vector<std::string>& args) {
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, {1, 0});
  if (context == nullptr || context->err != 0) {
    if (context != nullptr) redisFree(context);
    return std::nullopt;
  }
  redisSetTimeout(context, {2, 0});
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(args.size()), argv.data(), lengths.data()));
  std::optional<std::string> text;
  if (reply != nullptr && reply->type != REDIS_REPLY_ERROR) {
    auto flatten = [](const redisReply* r) {
      if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
      if (r->str != nullptr) return std::string(r->str, r->len);
      return std::string();
    };
    if (reply->type == REDIS_REPLY_ARRAY) {
      std::vector<std::string> lines;
      for (size_t i = 0; i < reply->elements; ++i) lines.push_back(flatten(reply->element[i]));
      text = absl::StrJoin(lines, "\n");
    } else {
      text = flatten(reply);
    }
  }
  if (reply != nullptr) freeReplyObject(reply);
  redisFree(context);
  return text;
}

// The value after `field` in an answer of alternating lines (SENTINEL MASTER) or of "field:value"
// lines (INFO).
inline std::string FieldOf(const std::optional<std::string>& answer, const std::string& field) {
  if (!answer.has_value()) return "";
  const std::vector<std::string> lines = absl::StrSplit(*answer, absl::ByAnyChar("\r\n"));
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == field && i + 1 < lines.size()) return lines[i + 1];
    if (absl::StartsWith(lines[i], field + ":")) return lines[i].substr(field.size() + 1);
  }
  return "";
}

class TestSentinelCluster {
 public:
  static constexpr char kMasterName[] = "flikpay-test";

  // Starts the cluster and waits until both replicas are in sync and every sentinel knows both
  // replicas and the other two sentinels (so a failover can be agreed at once).
  static absl::StatusOr<std::unique_ptr<TestSentinelCluster>> Start(
      const std::string& redis_server, const std::string& redis_sentinel) {
    auto cluster = std::unique_ptr<TestSentinelCluster>(new TestSentinelCluster());
    std::string pattern =
        (std::filesystem::temp_directory_path() / "flikpay-sentinel-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    cluster->dir_ = pattern;
    for (int i = 0; i < 3; ++i) {
      // AOF every second on all, as in production (see the README).
      std::vector<std::string> args = {"--dir", cluster->dir_, "--appendonly", "yes",
                                       "--appendfsync", "everysec", "--appenddirname",
                                       absl::StrCat("aof", i), "--dbfilename",
                                       absl::StrCat("node", i, ".rdb"),
                                       // A replica's first sync at once, not after 5 s.
                                       "--repl-diskless-sync-delay", "0"};
      if (i > 0) {
        args.push_back("--replicaof");
        args.push_back("127.0.0.1");
        args.push_back(std::to_string(cluster->servers_[0].port));
      }
      absl::StatusOr<TestRedis> server = StartTestRedis(redis_server, args);
      if (!server.ok()) return server.status();
      cluster->servers_.push_back(*std::move(server));
    }
    for (int i = 0; i < 3; ++i) {
      absl::Status failure = absl::UnavailableError("redis-sentinel was not started");
      for (int attempt = 0; attempt < 5; ++attempt) {
        const int port = FreeLoopbackPort();
        const std::string config = absl::StrCat(cluster->dir_, "/sentinel", i, ".conf");
        std::ofstream(config) << "port " << port << "\nbind 127.0.0.1\ndir " << cluster->dir_
                              << "\nsentinel monitor " << kMasterName << " 127.0.0.1 "
                              << cluster->servers_[0].port
                              << " 2\nsentinel down-after-milliseconds " << kMasterName
                              << " 1000\nsentinel failover-timeout " << kMasterName
                              << " 2000\nsentinel parallel-syncs " << kMasterName << " 2\n";
        std::string line;
        absl::StatusOr<std::unique_ptr<ChildProcess>> sentinel =
            ChildProcess::Start({redis_sentinel, config}, "+monitor master", &line);
        if (sentinel.ok()) {
          cluster->sentinels_.push_back(*std::move(sentinel));
          cluster->sentinel_ports_.push_back(port);
          failure = absl::OkStatus();
          break;
        }
        failure = sentinel.status();
      }
      if (!failure.ok()) return failure;
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (!cluster->Settled()) {
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            "the sentinels did not find each other and the replicas");
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return cluster;
  }

  ~TestSentinelCluster() {
    for (TestRedis& server : servers_) {
      if (server.process) kill(server.process->pid(), SIGCONT);  // a stopped one would not stop
    }
    sentinels_.clear();
    servers_.clear();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // redis-sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/flikpay-test
  std::string Url() const {
    std::vector<std::string> hosts;
    for (int port : sentinel_ports_) hosts.push_back(absl::StrCat("127.0.0.1:", port));
    return absl::StrCat("redis-sentinel://", absl::StrJoin(hosts, ","), "/", kMasterName);
  }

  const std::vector<int>& sentinel_ports() const { return sentinel_ports_; }
  // The servers: [0] the primary at the start, [1] and [2] its replicas.
  std::vector<TestRedis>& servers() { return servers_; }
  // The port the sentinel at `sentinel_port` names as the primary now (0 when it cannot say).
  static int PrimaryPortSaidBy(int sentinel_port) {
    std::optional<std::string> answer =
        AskRedis(sentinel_port, {"SENTINEL", "get-master-addr-by-name", kMasterName});
    int port = 0;
    if (!answer.has_value()) return 0;
    const std::vector<std::string> lines = absl::StrSplit(*answer, '\n');
    return lines.size() == 2 && absl::SimpleAtoi(lines[1], &port) ? port : 0;
  }
  // The port a majority of the sentinels (2 of 3) name as the primary now; 0 when no two agree
  // (one may learn of a switch last, or be the one a test stopped).
  int PrimaryPort() const {
    std::map<int, int> votes;
    for (int sentinel : sentinel_ports_) {
      const int port = PrimaryPortSaidBy(sentinel);
      if (port != 0 && ++votes[port] * 2 > static_cast<int>(sentinel_ports_.size())) return port;
    }
    return 0;
  }

  // The last `lines` lines each redis-server and redis-sentinel wrote, under a heading per process:
  // for a failed test (they went to stderr as they came too, but interleaved).
  void DumpLogTails(std::ostream& out, size_t lines = 40) {
    auto dump = [&](const std::string& heading, ChildProcess* process) {
      if (process == nullptr) return;
      const std::vector<std::string> all = process->OutputLinesWith("");
      out << "---- last " << std::min(lines, all.size()) << " lines of " << heading << " ----\n";
      for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
        out << all[i] << "\n";
      }
    };
    for (size_t i = 0; i < servers_.size(); ++i) {
      dump(absl::StrCat("redis-server ", i, " (port ", servers_[i].port, ")"),
           servers_[i].process.get());
    }
    for (size_t i = 0; i < sentinels_.size(); ++i) {
      dump(absl::StrCat("redis-sentinel ", i, " (port ", sentinel_ports_[i], ")"),
           sentinels_[i].get());
    }
  }

 private:
  TestSentinelCluster() = default;

  // Both replicas linked and done loading the primary's data, no node rewriting its AOF (a
  // replica rewrites it right after its first sync, which on two shared cores can hold up the
  // WAIT of a test's first writes past the store's ack timeout), and every sentinel knowing both
  // replicas and the other two sentinels.
  bool Settled() const {
    for (int i = 1; i < 3; ++i) {
      const std::optional<std::string> replication =
          AskRedis(servers_[i].port, {"INFO", "replication"});
      if (FieldOf(replication, "master_link_status") != "up" ||
          FieldOf(replication, "master_sync_in_progress") != "0") {
        return false;
      }
    }
    for (const TestRedis& server : servers_) {
      const std::optional<std::string> persistence = AskRedis(server.port, {"INFO", "persistence"});
      if (FieldOf(persistence, "loading") != "0" ||
          FieldOf(persistence, "aof_rewrite_in_progress") != "0" ||
          FieldOf(persistence, "aof_rewrite_scheduled") != "0") {
        return false;
      }
    }
    for (int port : sentinel_ports_) {
      std::optional<std::string> master = AskRedis(port, {"SENTINEL", "MASTER", kMasterName});
      if (FieldOf(master, "num-slaves") != "2" || FieldOf(master, "num-other-sentinels") != "2") {
        return false;
      }
    }
    return true;
  }

  std::string dir_;
  std::vector<TestRedis> servers_;
  std::vector<std::unique_ptr<ChildProcess>> sentinels_;
  std::vector<int> sentinel_ports_;
};

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_TEST_SENTINEL_H_
