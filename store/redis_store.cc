#include "store/redis_store.h"

#include <hiredis/hiredis.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "store/state_machine.h"

namespace flikpay::store {
namespace {

using google::protobuf::util::TimeUtil;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Optimistic transactions retry when another writer touched a watched key; each
// round lets at least one writer through, so this bounds the wait under heavy
// contention on one transaction.
constexpr int kMaxOptimisticRounds = 200;

// Begin is a single create-if-absent, so a Lua script is the simplest atomic
// form: it returns the stored fields when the id is taken, nil after creating
// the record.
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
  if (reply == nullptr || (reply->type != REDIS_REPLY_STRING &&
                           reply->type != REDIS_REPLY_STATUS)) {
    return "";
  }
  return std::string(reply->str, reply->len);
}

int64_t ReplyInt(const redisReply* reply) {
  if (reply == nullptr) return 0;
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  int64_t value = 0;
  absl::SimpleAtoi(ReplyString(reply), &value);
  return value;
}

google::protobuf::Timestamp Now() { return TimeUtil::GetCurrentTime(); }

// The "inflight" field holds the gateway call's deadline (ms); past it the
// claim has lapsed.
bool StillInFlight(const redisReply* inflight) {
  return ReplyInt(inflight) > absl::ToUnixMillis(absl::Now());
}

std::string Millis(absl::Time time) {
  return std::to_string(absl::ToUnixMillis(time));
}

}  // namespace

class RedisStore::Connection {
 public:
  explicit Connection(redisContext* context) : context_(context) {}
  ~Connection() { redisFree(context_); }

  bool broken() const { return broken_ || context_->err != 0; }

  // Sends one command (binary-safe arguments). UNAVAILABLE when the connection
  // fails; the connection is then dropped instead of going back to the pool.
  absl::StatusOr<Reply> Run(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    void* raw = redisCommandArgv(context_, static_cast<int>(args.size()),
                                 argv.data(), lengths.data());
    if (raw == nullptr) {
      broken_ = true;
      return absl::UnavailableError(absl::StrCat("redis: ", context_->errstr));
    }
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) {
      return absl::InternalError(
          absl::StrCat("redis: ", ReplyString(reply.get())));
    }
    return reply;
  }

  void SetTimeout(absl::Duration timeout) {
    redisSetTimeout(context_, absl::ToTimeval(timeout));
  }

 private:
  redisContext* context_;
  bool broken_ = false;
};

// A connection borrowed from the pool; it goes back when this goes away (unless
// broken).
class RedisStore::PooledConnection {
 public:
  PooledConnection(RedisStore* store, std::unique_ptr<Connection> connection)
      : store_(store), connection_(std::move(connection)) {}
  PooledConnection(PooledConnection&& other) = default;
  PooledConnection& operator=(PooledConnection&&) = delete;
  ~PooledConnection() {
    if (connection_) store_->Release(std::move(connection_));
  }
  Connection* operator->() { return connection_.get(); }

 private:
  RedisStore* store_;
  std::unique_ptr<Connection> connection_;
};

RedisStore::RedisStore(RedisConfig config) : config_(std::move(config)) {
  absl::string_view rest = config_.url;
  absl::ConsumePrefix(&rest, "redis://");
  std::pair<absl::string_view, absl::string_view> host_db =
      absl::StrSplit(rest, absl::MaxSplits('/', 1));
  std::pair<absl::string_view, absl::string_view> host_port =
      absl::StrSplit(host_db.first, absl::MaxSplits(':', 1));
  host_ = std::string(host_port.first.empty() ? "127.0.0.1" : host_port.first);
  if (!host_port.second.empty()) absl::SimpleAtoi(host_port.second, &port_);
  if (!host_db.second.empty()) absl::SimpleAtoi(host_db.second, &database_);
}

RedisStore::~RedisStore() = default;

std::string RedisStore::TxKey(absl::string_view id) const {
  return absl::StrCat(config_.key_prefix, "tx:", id);
}

std::string RedisStore::WatchKey() const {
  return absl::StrCat(config_.key_prefix, "watch");
}

std::string RedisStore::UuidKey(absl::string_view uuid) const {
  return absl::StrCat(config_.key_prefix, "uuid:", uuid);
}

absl::StatusOr<RedisStore::PooledConnection> RedisStore::Acquire() {
  {
    absl::MutexLock lock(&mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      return PooledConnection(this, std::move(connection));
    }
  }
  redisContext* context = redisConnectWithTimeout(
      host_.c_str(), port_, absl::ToTimeval(config_.connect_timeout));
  if (context == nullptr || context->err != 0) {
    std::string reason = context ? context->errstr : "out of memory";
    if (context) redisFree(context);
    return absl::UnavailableError(absl::StrCat("redis unreachable: ", reason));
  }
  auto connection = std::make_unique<Connection>(context);
  connection->SetTimeout(config_.command_timeout);
  if (database_ != 0) {
    absl::StatusOr<Reply> selected =
        connection->Run({"SELECT", std::to_string(database_)});
    if (!selected.ok()) return selected.status();
  }
  return PooledConnection(this, std::move(connection));
}

void RedisStore::Release(std::unique_ptr<Connection> connection) {
  if (connection->broken()) return;
  absl::MutexLock lock(&mutex_);
  if (static_cast<int>(idle_.size()) < config_.max_idle_connections) {
    idle_.push_back(std::move(connection));
  }
}

namespace {

absl::StatusOr<v1::Transaction> Decode(const redisReply* data,
                                       const redisReply* refunded) {
  v1::Transaction transaction;
  if (data == nullptr || data->type != REDIS_REPLY_STRING ||
      !transaction.ParseFromArray(data->str, static_cast<int>(data->len))) {
    return absl::DataLossError("stored transaction record is unreadable");
  }
  transaction.set_refunded_amount_minor(ReplyInt(refunded));
  return transaction;
}

}  // namespace

absl::StatusOr<BeginResult> RedisStore::Begin(const v1::Transaction& initial,
                                              absl::string_view fingerprint,
                                              absl::Time flight_deadline) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> reply = connection->Run(
      {"EVAL", kBeginScript, "2", TxKey(initial.merchant_transaction_id()),
       WatchKey(), initial.SerializeAsString(), std::string(fingerprint),
       std::to_string(absl::ToInt64Milliseconds(config_.retention)),
       Millis(flight_deadline),
       Millis(flight_deadline + config_.unknown_check_after),
       initial.merchant_transaction_id()});
  if (!reply.ok()) return reply.status();
  BeginResult result;
  if ((*reply)->type == REDIS_REPLY_NIL) {
    result.created = true;
    result.in_flight = true;
    result.transaction = initial;
    return result;
  }
  if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements != 4) {
    return absl::InternalError("redis: unexpected answer to the begin script");
  }
  redisReply** fields = (*reply)->element;
  absl::StatusOr<v1::Transaction> stored = Decode(fields[0], fields[3]);
  if (!stored.ok()) return stored.status();
  result.transaction = *std::move(stored);
  result.same_request = ReplyString(fields[1]) == fingerprint;
  result.in_flight = StillInFlight(fields[2]);
  return result;
}

absl::StatusOr<BeginResult> RedisStore::BeginRefund(
    const v1::Transaction& refund, absl::string_view fingerprint,
    absl::Time flight_deadline) {
  // WATCH/MULTI rather than a Lua script: the cap check needs the original's
  // type and status, which live in its protobuf record; decoding that is C++'s
  // job. EXEC fails if anything wrote the original (or the refund id) after
  // WATCH, so two refunds can never both pass the check on the same `reserved`
  // value; the loser re-reads and re-checks.
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  const std::string refund_key = TxKey(refund.merchant_transaction_id());
  const std::string original_key =
      TxKey(refund.original_merchant_transaction_id());
  for (int round = 0; round < kMaxOptimisticRounds; ++round) {
    absl::StatusOr<Reply> watched =
        connection->Run({"WATCH", original_key, refund_key});
    if (!watched.ok()) return watched.status();
    absl::StatusOr<Reply> existing = connection->Run(
        {"HMGET", refund_key, "data", "fp", "inflight", "refunded"});
    if (!existing.ok()) return existing.status();
    if ((*existing)->element[0]->type != REDIS_REPLY_NIL) {
      connection->Run({"UNWATCH"}).IgnoreError();
      BeginResult result;
      absl::StatusOr<v1::Transaction> stored =
          Decode((*existing)->element[0], (*existing)->element[3]);
      if (!stored.ok()) return stored.status();
      result.transaction = *std::move(stored);
      result.same_request = ReplyString((*existing)->element[1]) == fingerprint;
      result.in_flight = StillInFlight((*existing)->element[2]);
      return result;
    }
    absl::StatusOr<Reply> original = connection->Run(
        {"HMGET", original_key, "data", "reserved", "refunded"});
    if (!original.ok()) return original.status();
    if ((*original)->element[0]->type == REDIS_REPLY_NIL) {
      connection->Run({"UNWATCH"}).IgnoreError();
      return absl::NotFoundError(
          "original_merchant_transaction_id: no such transaction");
    }
    absl::StatusOr<v1::Transaction> debit =
        Decode((*original)->element[0], (*original)->element[2]);
    if (!debit.ok()) return debit.status();
    if (debit->type() != v1::TRANSACTION_TYPE_DEBIT ||
        debit->status() != v1::TRANSACTION_STATUS_SUCCESS) {
      connection->Run({"UNWATCH"}).IgnoreError();
      return absl::FailedPreconditionError(
          "original_merchant_transaction_id: only a successful debit can be "
          "refunded");
    }
    const int64_t reserved = ReplyInt((*original)->element[1]);
    const int64_t left = debit->amount_minor() - reserved;
    if (refund.amount_minor() > left) {
      connection->Run({"UNWATCH"}).IgnoreError();
      return absl::FailedPreconditionError(
          absl::StrCat("amount_minor: ", refund.amount_minor(),
                       " exceeds what is left of the original payment (", left,
                       " cents, counting pending refunds)"));
    }
    const std::string ttl =
        std::to_string(absl::ToInt64Milliseconds(config_.retention));
    for (const std::vector<std::string>& command :
         std::vector<std::vector<std::string>>{
             {"MULTI"},
             {"HINCRBY", original_key, "reserved",
              std::to_string(refund.amount_minor())},
             {"HSET", refund_key, "data", refund.SerializeAsString(), "fp",
              std::string(fingerprint), "inflight", Millis(flight_deadline),
              "reserved", "0", "refunded", "0"},
             {"PEXPIRE", refund_key, ttl},
             {"ZADD", WatchKey(),
              Millis(flight_deadline + config_.unknown_check_after),
              refund.merchant_transaction_id()}}) {
      absl::StatusOr<Reply> queued = connection->Run(command);
      if (!queued.ok()) return queued.status();
    }
    absl::StatusOr<Reply> executed = connection->Run({"EXEC"});
    if (!executed.ok()) return executed.status();
    if ((*executed)->type == REDIS_REPLY_NIL)
      continue;  // someone wrote in between
    BeginResult result;
    result.created = true;
    result.in_flight = true;
    result.transaction = refund;
    return result;
  }
  return absl::AbortedError(
      "too many concurrent writers on the original payment; retry");
}

absl::Status RedisStore::Abandon(absl::string_view merchant_transaction_id) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  const std::string key = TxKey(merchant_transaction_id);
  absl::StatusOr<Reply> stored =
      connection->Run({"HMGET", key, "data", "refunded"});
  if (!stored.ok()) return stored.status();
  if ((*stored)->element[0]->type == REDIS_REPLY_NIL) return absl::OkStatus();
  absl::StatusOr<v1::Transaction> transaction =
      Decode((*stored)->element[0], (*stored)->element[1]);
  if (!transaction.ok()) return transaction.status();
  std::vector<std::vector<std::string>> commands = {
      {"MULTI"},
      {"DEL", key},
      {"ZREM", WatchKey(), std::string(merchant_transaction_id)}};
  if (transaction->type() == v1::TRANSACTION_TYPE_REFUND) {
    commands.push_back(
        {"HINCRBY", TxKey(transaction->original_merchant_transaction_id()),
         "reserved", std::to_string(-transaction->amount_minor())});
  }
  commands.push_back({"EXEC"});
  for (const std::vector<std::string>& command : commands) {
    absl::StatusOr<Reply> reply = connection->Run(command);
    if (!reply.ok()) return reply.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Transaction> RedisStore::Get(
    absl::string_view merchant_transaction_id) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> stored = connection->Run(
      {"HMGET", TxKey(merchant_transaction_id), "data", "refunded"});
  if (!stored.ok()) return stored.status();
  if ((*stored)->element[0]->type == REDIS_REPLY_NIL) {
    return absl::NotFoundError(
        absl::StrCat("no transaction with merchant_transaction_id ",
                     merchant_transaction_id));
  }
  return Decode((*stored)->element[0], (*stored)->element[1]);
}

absl::StatusOr<std::string> RedisStore::FindByGatewayUuid(
    absl::string_view uuid) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> found = connection->Run({"GET", UuidKey(uuid)});
  if (!found.ok()) return found.status();
  if ((*found)->type == REDIS_REPLY_NIL) {
    return absl::NotFoundError(
        absl::StrCat("no transaction with gateway_uuid ", uuid));
  }
  return ReplyString(found->get());
}

absl::StatusOr<ApplyResult> RedisStore::Apply(
    absl::string_view merchant_transaction_id, const Report& report) {
  // Compare-and-set through WATCH: the record is read, changed in C++ through
  // the state machine, and written back only if nobody wrote it in between;
  // otherwise the report is judged again against the newer record.
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  const std::string key = TxKey(merchant_transaction_id);
  for (int round = 0; round < kMaxOptimisticRounds; ++round) {
    absl::StatusOr<Reply> watched = connection->Run({"WATCH", key});
    if (!watched.ok()) return watched.status();
    absl::StatusOr<Reply> stored =
        connection->Run({"HMGET", key, "data", "refunded", "inflight"});
    if (!stored.ok()) return stored.status();
    if ((*stored)->element[0]->type == REDIS_REPLY_NIL) {
      connection->Run({"UNWATCH"}).IgnoreError();
      return absl::NotFoundError(
          absl::StrCat("no transaction with merchant_transaction_id ",
                       merchant_transaction_id));
    }
    absl::StatusOr<v1::Transaction> current =
        Decode((*stored)->element[0], (*stored)->element[1]);
    if (!current.ok()) return current.status();
    const std::string flight = ReplyString((*stored)->element[2]);
    const bool was_in_flight = StillInFlight((*stored)->element[2]);

    v1::Transaction next = *current;
    if (report.fill) report.fill(next);
    next.set_status(current->status());
    next.set_refunded_amount_minor(current->refunded_amount_minor());
    next.set_version(current->version());
    *next.mutable_history() = current->history();

    ApplyResult result;
    const v1::TransactionStatus previous = current->status();
    const Verdict verdict = Judge(previous, report.status);
    const google::protobuf::Timestamp now = Now();
    if (verdict == Verdict::kApply) {
      next.set_status(report.status);
      v1::StatusChange* change = next.add_history();
      *change->mutable_at() = now;
      change->set_from(previous);
      change->set_to(report.status);
      change->set_source(report.source);
      result.status_changed = true;
    } else if (verdict == Verdict::kAnomaly &&
               report.source != v1::EVENT_SOURCE_RPC) {
      v1::StatusChange* change = next.add_history();
      *change->mutable_at() = now;
      change->set_from(previous);
      change->set_to(report.status);
      change->set_source(report.source);
      change->set_note("contradicts the final status; ignored");
      result.anomaly = true;
    }
    const bool ends_flight = report.ends_flight && was_in_flight;
    bool record_changed =
        next.SerializeAsString() != current->SerializeAsString();
    if (!record_changed && !ends_flight) {
      connection->Run({"UNWATCH"}).IgnoreError();
      result.transaction = *std::move(current);
      return result;
    }
    if (record_changed) {
      next.set_version(current->version() + 1);
      *next.mutable_updated_at() = now;
    }

    const std::string ttl =
        std::to_string(absl::ToInt64Milliseconds(config_.retention));
    std::vector<std::vector<std::string>> commands = {{"MULTI"}};
    v1::Transaction stored_form = next;
    stored_form
        .clear_refunded_amount_minor();  // kept in its own field, see Decode
    commands.push_back({"HSET", key, "data", stored_form.SerializeAsString(),
                        "inflight", ends_flight ? "0" : flight});
    commands.push_back({"PEXPIRE", key, ttl});
    // Keep the reconciler's watch list in step with the status.
    if (IsFinal(next.status())) {
      commands.push_back(
          {"ZREM", WatchKey(), std::string(merchant_transaction_id)});
    } else {
      absl::Time check = absl::Now() + config_.unknown_check_after;
      if (!ends_flight && was_in_flight) {
        check = absl::FromUnixMillis(ReplyInt((*stored)->element[2])) +
                config_.unknown_check_after;
      }
      if (next.status() == v1::TRANSACTION_STATUS_PENDING) {
        check = absl::Now() + config_.pending_check_after;
        if (next.has_expires_at()) {
          check = std::min(check,
                           absl::FromUnixSeconds(next.expires_at().seconds()) +
                               config_.expiry_grace);
        }
      }
      commands.push_back({"ZADD", WatchKey(), Millis(check),
                          std::string(merchant_transaction_id)});
    }
    if (!next.gateway_uuid().empty() &&
        next.gateway_uuid() != current->gateway_uuid()) {
      commands.push_back({"SET", UuidKey(next.gateway_uuid()),
                          std::string(merchant_transaction_id), "PX", ttl});
    }
    if (result.status_changed && next.type() == v1::TRANSACTION_TYPE_REFUND &&
        IsFinal(next.status())) {
      // A successful refund counts as refunded; a failed one gives its
      // reservation back.
      const std::string original_key =
          TxKey(next.original_merchant_transaction_id());
      const std::string amount = std::to_string(next.amount_minor());
      if (next.status() == v1::TRANSACTION_STATUS_SUCCESS) {
        commands.push_back({"HINCRBY", original_key, "refunded", amount});
      } else {
        commands.push_back({"HINCRBY", original_key, "reserved",
                            std::to_string(-next.amount_minor())});
      }
    }
    if (result.status_changed) {
      v1::StatusEvent event;
      *event.mutable_transaction() = next;
      event.set_previous_status(previous);
      event.set_source(report.source);
      *event.mutable_occurred_at() = now;
      commands.push_back({"XADD", absl::StrCat(config_.key_prefix, "events"),
                          "MAXLEN", "~", std::to_string(config_.max_events),
                          "*", "e", event.SerializeAsString()});
    }
    commands.push_back({"EXEC"});
    Reply executed;
    for (const std::vector<std::string>& command : commands) {
      absl::StatusOr<Reply> reply = connection->Run(command);
      if (!reply.ok()) return reply.status();
      executed = *std::move(reply);
    }
    if (executed->type == REDIS_REPLY_NIL)
      continue;  // a concurrent writer won; judge again
    if (result.status_changed) {
      result.event_cursor =
          ReplyString(executed->element[executed->elements - 1]);
    }
    result.transaction = std::move(next);
    return result;
  }
  return absl::AbortedError(
      "too many concurrent writers on the transaction; retry");
}

absl::Status RedisStore::RecordUnmatchedCallback(absl::string_view body) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  const std::string key = absl::StrCat(config_.key_prefix, "unmatched");
  absl::StatusOr<Reply> pushed =
      connection->Run({"LPUSH", key, std::string(body)});
  if (!pushed.ok()) return pushed.status();
  return connection->Run({"LTRIM", key, "0", "9999"}).status();
}

namespace {

absl::StatusOr<std::vector<v1::StatusEvent>> DecodeEntries(
    const redisReply* entries) {
  std::vector<v1::StatusEvent> events;
  if (entries == nullptr || entries->type != REDIS_REPLY_ARRAY) return events;
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* entry = entries->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    const redisReply* fields = entry->element[1];
    v1::StatusEvent event;
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
      if (ReplyString(fields->element[f]) == "e") {
        const redisReply* value = fields->element[f + 1];
        if (!event.ParseFromArray(value->str, static_cast<int>(value->len))) {
          return absl::DataLossError("stored event is unreadable");
        }
      }
    }
    event.set_cursor(ReplyString(entry->element[0]));
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace

absl::StatusOr<std::vector<v1::StatusEvent>> RedisStore::ReadEvents(
    absl::string_view after_cursor, int max_count) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> reply = connection->Run(
      {"XRANGE", absl::StrCat(config_.key_prefix, "events"),
       after_cursor.empty() ? "-" : absl::StrCat("(", after_cursor), "+",
       "COUNT", std::to_string(max_count)});
  if (!reply.ok()) return reply.status();
  return DecodeEntries(reply->get());
}

absl::StatusOr<std::vector<v1::StatusEvent>> RedisStore::WaitForEvents(
    absl::string_view after_cursor, int max_count, absl::Duration wait) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  // The socket must outlast the server-side block.
  connection->SetTimeout(wait + config_.command_timeout);
  absl::StatusOr<Reply> reply = connection->Run(
      {"XREAD", "COUNT", std::to_string(max_count), "BLOCK",
       std::to_string(absl::ToInt64Milliseconds(wait)), "STREAMS",
       absl::StrCat(config_.key_prefix, "events"),
       after_cursor.empty() ? "0-0" : std::string(after_cursor)});
  connection->SetTimeout(config_.command_timeout);
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements == 0) {
    return std::vector<v1::StatusEvent>();
  }
  const redisReply* stream = (*reply)->element[0];
  if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) {
    return std::vector<v1::StatusEvent>();
  }
  return DecodeEntries(stream->element[1]);
}

absl::StatusOr<std::string> RedisStore::LatestCursor() {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> reply =
      connection->Run({"XREVRANGE", absl::StrCat(config_.key_prefix, "events"),
                       "+", "-", "COUNT", "1"});
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements == 0)
    return std::string("0-0");
  return ReplyString((*reply)->element[0]->element[0]);
}

absl::StatusOr<std::vector<std::string>> RedisStore::DueForCheck(
    absl::Time now, int max_count) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> reply =
      connection->Run({"ZRANGEBYSCORE", WatchKey(), "-inf", Millis(now),
                       "LIMIT", "0", std::to_string(max_count)});
  if (!reply.ok()) return reply.status();
  std::vector<std::string> ids;
  for (size_t i = 0; i < (*reply)->elements; ++i) {
    ids.push_back(ReplyString((*reply)->element[i]));
  }
  return ids;
}

absl::Status RedisStore::ScheduleCheck(
    absl::string_view merchant_transaction_id, absl::Time when) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  // XX: only transactions still on the list (a final one was removed by Apply).
  return connection
      ->Run({"ZADD", WatchKey(), "XX", Millis(when),
             std::string(merchant_transaction_id)})
      .status();
}

absl::StatusOr<bool> RedisStore::TryLease(
    absl::string_view merchant_transaction_id, absl::string_view owner,
    absl::Duration ttl) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  absl::StatusOr<Reply> reply = connection->Run(
      {"SET",
       absl::StrCat(config_.key_prefix, "lease:", merchant_transaction_id),
       std::string(owner), "NX", "PX",
       std::to_string(absl::ToInt64Milliseconds(ttl))});
  if (!reply.ok()) return reply.status();
  return (*reply)->type != REDIS_REPLY_NIL;
}

absl::Status RedisStore::ReleaseLease(absl::string_view merchant_transaction_id,
                                      absl::string_view owner) {
  // Compare-and-delete: a lease that expired and was taken by another replica
  // stays theirs.
  static constexpr char kRelease[] = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  return connection
      ->Run(
          {"EVAL", kRelease, "1",
           absl::StrCat(config_.key_prefix, "lease:", merchant_transaction_id),
           std::string(owner)})
      .status();
}

absl::StatusOr<bool> RedisStore::TakeStatusQuery(int per_minute) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  const std::string key =
      absl::StrCat(config_.key_prefix,
                   "statusquota:", absl::ToUnixSeconds(absl::Now()) / 60);
  absl::StatusOr<Reply> count = connection->Run({"INCR", key});
  if (!count.ok()) return count.status();
  if ((*count)->integer == 1)
    connection->Run({"EXPIRE", key, "120"}).IgnoreError();
  return (*count)->integer <= per_minute;
}

absl::StatusOr<Store::Backlog> RedisStore::CheckBacklog(absl::Time now) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  Backlog backlog;
  absl::StatusOr<Reply> due =
      connection->Run({"ZCOUNT", WatchKey(), "-inf", Millis(now)});
  if (!due.ok()) return due.status();
  backlog.due = (*due)->integer;
  absl::StatusOr<Reply> oldest =
      connection->Run({"ZRANGE", WatchKey(), "0", "0", "WITHSCORES"});
  if (!oldest.ok()) return oldest.status();
  if ((*oldest)->elements == 2) {
    const absl::Time first =
        absl::FromUnixMillis(ReplyInt((*oldest)->element[1]));
    if (first < now) backlog.oldest = now - first;
  }
  return backlog;
}

absl::StatusOr<bool> RedisStore::CanResumeFrom(absl::string_view cursor) {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  const std::string key = absl::StrCat(config_.key_prefix, "events");
  // Trimming removes the oldest entries first: while the cursor's own entry
  // is kept, so is everything after it.
  absl::StatusOr<Reply> own = connection->Run(
      {"XRANGE", key, std::string(cursor), std::string(cursor)});
  if (!own.ok()) return own.status();
  if ((*own)->elements > 0) return true;
  absl::StatusOr<Reply> info = connection->Run({"XINFO", "STREAM", key});
  if (!info.ok()) {
    if (absl::IsInternal(info.status())) return true;  // no stream yet
    return info.status();
  }
  int64_t length = 0, added = 0;
  std::string first;
  for (size_t i = 0; i + 1 < (*info)->elements; i += 2) {
    const std::string field = ReplyString((*info)->element[i]);
    const redisReply* value = (*info)->element[i + 1];
    if (field == "length") length = ReplyInt(value);
    if (field == "entries-added") added = ReplyInt(value);
    if (field == "first-entry" && value->type == REDIS_REPLY_ARRAY &&
        value->elements > 0) {
      first = ReplyString(value->element[0]);
    }
  }
  const bool trimmed = added > length;
  if (!trimmed) return true;
  if (first.empty()) return false;  // everything was trimmed
  // A cursor newer than the first kept entry lost nothing; an older one may
  // have.
  auto parse = [](const std::string& id) {
    std::pair<std::string, std::string> parts =
        absl::StrSplit(id, absl::MaxSplits('-', 1));
    uint64_t ms = 0, seq = 0;
    absl::SimpleAtoi(parts.first, &ms);
    absl::SimpleAtoi(parts.second, &seq);
    return std::make_pair(ms, seq);
  };
  return !(parse(std::string(cursor)) < parse(first));
}

absl::Status RedisStore::Ping() {
  absl::StatusOr<PooledConnection> leased = Acquire();
  if (!leased.ok()) return leased.status();
  PooledConnection& connection = *leased;
  return connection->Run({"PING"}).status();
}

}  // namespace flikpay::store
