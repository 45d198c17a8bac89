#ifndef FLIKPAY_STORE_REDIS_STORE_H_
#define FLIKPAY_STORE_REDIS_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/cursor.h"
#include "core/transition.h"
#include "store/store.h"

struct redisContext;
struct redisReply;

namespace flikpay::store {

struct RedisConfig {
  // redis://[user[:password]@]host[:port][/db], or redis-sentinel://... to find the primary through
  // Sentinel (see ParseRedisUrl). Holds the password: never log it.
  std::string url = "redis://127.0.0.1:6379/0";
  std::string key_prefix = "flikpay:";
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // Every command has this timeout: a hung Redis must not hold a caller longer.
  absl::Duration command_timeout = absl::Seconds(2);
  // Transaction records and their idempotency keys live this long.
  absl::Duration retention = absl::Hours(24 * 30);
  // The event stream keeps about this many events (XADD MAXLEN ~).
  int64_t max_events = 1'000'000;
  // Also write a change notice to the stream when a final record changes without a status event,
  // so replicas' record caches forget it. Off until every replica reads notices: releases before
  // them spin on a stream whose newest entry is a notice and end a replay early at one (README,
  // "Record cache").
  bool change_notices = false;
  int max_idle_connections = 16;
  // Durability of the writes that acknowledge a money move (see RedisStore): after them `WAIT n`
  // for this many replicas, and UNAVAILABLE ("not yet durable") when fewer acknowledge within
  // replica_ack_timeout. 0 never waits. Unset: 0 for redis:// (a single Redis), 1 for
  // redis-sentinel://.
  std::optional<int> min_replica_acks;
  absl::Duration replica_ack_timeout = absl::Seconds(1);
  // Told of every round trip (a command or a pipeline, named by its first command) and every
  // failed connect ("CONNECT"), for the metrics. Runs on the calling thread: cheap, thread-safe.
  std::function<void(absl::string_view command, absl::Duration latency, const absl::Status& status)>
      observe_round_trip;
};

struct RedisAddress {
  std::string host;  // a name, IPv4 or IPv6 address (without brackets)
  int port = 0;
  bool operator==(const RedisAddress&) const = default;
};

struct RedisEndpoint {
  std::string host = "127.0.0.1";  // a name, IPv4 or IPv6 address (without brackets)
  int port = 6379;
  int database = 0;
  // Sent with AUTH on every new connection when the password is set: `AUTH username password`
  // (an ACL user), or `AUTH password` without a username (Redis' "default" user). Never log them.
  std::string username;
  std::string password;
  // redis-sentinel:// only (then host and port above are unused: the primary is asked of these).
  std::vector<RedisAddress> sentinels;
  std::string master_name;
  // Sent with `AUTH password` to each sentinel when set (Sentinel's requirepass). The data nodes
  // take username/password above.
  std::string sentinel_password;

  bool uses_sentinel() const { return !sentinels.empty(); }
};
// redis://[user[:password]@]host[:port][/db]: redis://:password@host is the password alone (the
// default user); user and password are percent-decoded; an IPv6 host is written in brackets
// ([::1]:6379). An empty host is 127.0.0.1, no port 6379, no database 0.
//
// redis-sentinel://[user[:password]@]host1[:port1][,host2[:port2]...]/master-name[/db]
// [?sentinel_password=...]: the sentinels to ask for the primary of `master-name` (port 26379 when
// left out; at least one host); the credentials and database are the data nodes' (primary and
// replicas alike). The sentinels need no password unless sentinel_password (percent-encoded) is
// given; an unescaped '@' or '/' in it (or in the data nodes' password) still reads as meant.
//
// INVALID_ARGUMENT saying what is wrong (never quoting the credentials), also for rediss:// (no
// TLS to Redis here).
absl::StatusOr<RedisEndpoint> ParseRedisUrl(absl::string_view url);

// The Store on Redis (hiredis, blocking calls with timeouts; callers run them off their event
// loops). Layout, all under key_prefix (built only by the *Key methods below):
//   tx:{merchant_transaction_id}  hash: data (a TransactionRecord, see record_codec.h),
//                                 fp (request fingerprint), inflight (the claiming call's
//                                 deadline, ms; 0 when over), reserved (debits: cents of pending
//                                 and successful refunds), refunded (debits: successful refunds)
//   uuid:{gateway uuid}           the merchant_transaction_id
//   watch:unknown, watch          sorted sets: ids not final (UNKNOWN ones on the first, read
//                                 first), scored by when the reconciler should look (ms)
//   lease:{id}                    which replica is reconciling the id
//   statusquota                   sorted set: status queries granted in the sliding window
//   spend:{caller}:{rpc}          hash: minute (Redis' clock, unix ms / 60000) -> cents reserved
//                                 in it; caller and rpc percent-escaped (all but [A-Za-z0-9._~-])
//                                 so no caller string reaches another's key; minutes wholly
//                                 before the window are deleted by each reservation (at most
//                                 window/1 min + 1 fields); expires a window and a minute after
//                                 the last reservation
//   events                        stream of StatusEvent (field "e"); entry ids are the cursors;
//                                 also change notices (field "c": the id of a final record that
//                                 changed without an event, for the replicas' record caches)
//   unmatched                     list of verified callbacks for unknown transactions (newest
//                                 10,000, expiring after the retention period)
//   seen:{sha256 of signature}    a verified callback's signature, for twice the Date tolerance
class RedisStore : public Store {
 public:
  explicit RedisStore(RedisConfig config);
  ~RedisStore() override;

  absl::StatusOr<BeginResult> Begin(const v1::Transaction& initial, absl::string_view fingerprint,
                                    absl::Time flight_deadline, absl::Time first_check) override;
  absl::StatusOr<BeginResult> BeginRefund(const v1::Transaction& refund,
                                          absl::string_view fingerprint, absl::Time flight_deadline,
                                          absl::Time first_check, RefundCap cap) override;
  absl::Status Abandon(absl::string_view merchant_transaction_id) override;
  absl::StatusOr<v1::Transaction> Get(absl::string_view merchant_transaction_id) override;
  absl::StatusOr<std::vector<std::optional<v1::Transaction>>> GetMany(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::string> FindByGatewayUuid(absl::string_view uuid) override;
  absl::StatusOr<ApplyResult> Apply(absl::string_view merchant_transaction_id,
                                    const Report& report) override;
  absl::StatusOr<ApplyResult> ApplyCallback(absl::string_view merchant_transaction_id,
                                            const Report& report,
                                            const CallbackApply& callback) override;
  absl::Status RecordUnmatchedCallback(absl::string_view body) override;
  absl::StatusOr<Sighting> SightCallback(absl::string_view signature,
                                         absl::Duration handling_lease) override;
  absl::Status MarkCallbackHandled(absl::string_view signature, absl::Duration ttl) override;
  absl::Status ForgetSighting(absl::string_view signature) override;
  absl::StatusOr<std::vector<v1::StatusEvent>> ReadEvents(absl::string_view after_cursor,
                                                          int max_count) override;
  absl::StatusOr<std::vector<v1::StatusEvent>> WaitForEvents(absl::string_view after_cursor,
                                                             int max_count,
                                                             absl::Duration wait) override;
  absl::StatusOr<StreamRead> WaitForChanges(absl::string_view after_cursor, int max_count,
                                            absl::Duration wait) override;
  // The pool's generation (redis-sentinel://; 0 with redis://, which follows no failover).
  uint64_t PrimaryGeneration() override ABSL_LOCKS_EXCLUDED(mutex_);
  // The replicas each write that acknowledges a money move waits for: RedisConfig's
  // min_replica_acks, or its default for the URL's scheme.
  int min_replica_acks() const { return min_replica_acks_; }
  absl::StatusOr<std::string> LatestCursor() override;
  // Deletes every change notice from the event stream, page by page (no long block of Redis), and
  // says how many: the step before going back to a release that cannot read notices (README,
  // "Record cache"), once no replica writes them any more. Events stay; cursors handed to
  // subscribers are always events', so none is lost.
  absl::StatusOr<int64_t> DropChangeNotices();
  absl::Status Ping() override;
  absl::StatusOr<bool> CanResumeFrom(absl::string_view cursor) override;
  absl::StatusOr<std::vector<std::string>> DueForCheck(absl::Time now, int max_count) override;
  absl::Status ScheduleCheck(absl::string_view merchant_transaction_id, absl::Time when) override;
  absl::StatusOr<bool> TryLease(absl::string_view merchant_transaction_id, absl::string_view owner,
                                absl::Duration ttl) override;
  absl::Status ReleaseLease(absl::string_view merchant_transaction_id,
                            absl::string_view owner) override;
  absl::StatusOr<QueryTake> TakeStatusQuery(int limit, absl::Duration window) override;
  absl::StatusOr<int> StatusQueriesInWindow(absl::Duration window) override;
  absl::StatusOr<Backlog> CheckBacklog(absl::Time now) override;
  absl::StatusOr<SpendResult> ReserveSpend(absl::string_view caller, absl::string_view rpc,
                                           int64_t amount_minor, int64_t limit_minor,
                                           absl::Duration window) override;
  absl::Status ReleaseSpend(absl::string_view caller, absl::string_view rpc, int64_t amount_minor,
                            absl::Time reserved_at, absl::Duration window) override;

  // The key of a caller's spend on one rpc (public for tests that look at the buckets).
  std::string SpendKey(absl::string_view caller, absl::string_view rpc) const;

  class Connection;
  class PooledConnection;

 private:
  absl::StatusOr<PooledConnection> Acquire();
  // A new connection, authenticated and on the configured database: to the URL's host, or to the
  // primary the sentinels name (checked with ROLE).
  absl::StatusOr<std::unique_ptr<Connection>> Connect();
  // A new connection to `address`, of pool generation `generation`; with `must_be_primary`, one
  // whose ROLE is not "master" is refused.
  absl::StatusOr<std::unique_ptr<Connection>> ConnectTo(const RedisAddress& address,
                                                        uint64_t generation, bool must_be_primary);
  // Asks each sentinel in turn for the primary and connects to the first that is one.
  absl::StatusOr<std::unique_ptr<Connection>> Discover(uint64_t generation, RedisAddress* primary)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(discovery_mutex_);
  // redis-sentinel:// only, on a thread of its own: subscribed to a sentinel's +switch-master,
  // moves to the new primary as soon as the sentinels announce it (pooled connections to the old
  // one are dropped), rather than at the first command that fails there. A sentinel that goes away
  // is replaced by the next; a switch missed meanwhile is still found by the failing command.
  void WatchSentinels();
  // Forgets the primary and every pooled connection of `generation` (if still the current one).
  void MarkStale(uint64_t generation) ABSL_LOCKS_EXCLUDED(mutex_);
  void Release(std::unique_ptr<Connection> connection);
  // Notes a cursor this process has seen (written or read): the floor of the stream's ids on every
  // new connection (see ConnectTo).
  void SawCursor(absl::string_view cursor) ABSL_LOCKS_EXCLUDED(mutex_);
  absl::StatusOr<StreamRead> Seen(absl::StatusOr<StreamRead> read);
  // After a write that acknowledges a money move: WAIT for min_replica_acks replicas. Short of
  // them: UNAVAILABLE, and (through Sentinel) the primary looked for again only when ROLE on the
  // same connection no longer says "master" (or fails).
  absl::Status AwaitReplicas(Connection& connection);
  // Before acknowledging what is already stored (a repeat): a write of this connection's own to
  // `key` (PEXPIRE to `ttl`), then AwaitReplicas, so WAIT covers every earlier write.
  absl::Status AwaitReplicasOfEarlierWrites(Connection& connection, const std::string& key,
                                            absl::Duration ttl);
  // Begin and BeginRefund on an id already claimed: AwaitReplicasOfEarlierWrites unless the claim
  // is still in flight (then nothing is acknowledged).
  absl::Status AwaitClaimedBefore(Connection& connection, const std::string& key,
                                  const BeginResult& claimed);
  // Apply, and with `callback` ApplyCallback.
  absl::StatusOr<ApplyResult> ApplyWith(absl::string_view merchant_transaction_id,
                                        const Report& report, const CallbackApply* callback);
  // Runs `work` on a pooled connection; UNAVAILABLE when none can be made.
  template <typename Work>
  auto WithConnection(Work work) -> decltype(work(std::declval<Connection&>()));

  std::string TxKey(absl::string_view id) const;
  std::string UuidKey(absl::string_view uuid) const;
  std::string WatchKey() const;
  std::string UnknownWatchKey() const;
  // The watch list a transaction belongs on: unknown outcomes apart, so they are read first.
  std::string WatchKeyFor(const v1::Transaction& transaction) const;
  std::string LeaseKey(absl::string_view id) const;
  std::string StatusQuotaKey() const;
  std::string EventsKey() const;
  std::string UnmatchedKey() const;
  std::string SightingKey(absl::string_view signature) const;

  RedisConfig config_;
  RedisEndpoint endpoint_;
  // Makes this process's entries in the status-query window distinct from every other replica's.
  const std::string nonce_prefix_;
  std::atomic<uint64_t> query_nonce_{0};
  // config_.min_replica_acks, or its default for the URL's scheme.
  int min_replica_acks_ = 0;
  // One discovery through Sentinel at a time: the others wait for its answer.
  absl::Mutex discovery_mutex_ ABSL_ACQUIRED_BEFORE(mutex_);
  absl::Mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mutex_);
  // redis-sentinel:// only: every connection carries the generation it was made in; a lost primary
  // (a connection error, READONLY, MASTERDOWN, a WAIT short of replicas on a server whose ROLE is
  // no longer master) moves to the next, and connections of older ones are discarded instead of
  // reused. A WAIT short of replicas on a server still the primary fails only its own call.
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;
  std::optional<RedisAddress> primary_ ABSL_GUARDED_BY(mutex_);
  // The +switch-master watcher, and the socket its blocking read waits on (shut down to end it).
  absl::Notification stop_watching_;
  absl::Mutex watch_mutex_;
  int watch_fd_ ABSL_GUARDED_BY(watch_mutex_) = -1;
  std::thread watcher_;
  // The highest event-stream id this process has written or read.
  std::optional<core::Cursor> highest_cursor_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace flikpay::store

#endif  // FLIKPAY_STORE_REDIS_STORE_H_
