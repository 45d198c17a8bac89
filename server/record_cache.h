#ifndef FLIKPAY_SERVER_RECORD_CACHE_H_
#define FLIKPAY_SERVER_RECORD_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::server {

// One replica's cache of final transaction records (SUCCESS, CANCELLED, ERROR), so GetStatus of a
// settled transaction costs no Redis round trip. Kept coherent by the replica's EventHub, which
// reads the one event stream every replica writes to:
//
// - What can change a cached record is always in the stream: a status change is an event (and a
//   refund's event names the debit whose refunded amount it moves), and any other change to a final
//   record is a change notice (core::NeedsChangeNotice). The hub calls Invalidate for every id an
//   event or notice names before it offers the event to any subscriber, so once a replica's hub
//   has delivered the event of a change, GetStatus there never answers the record before it.
// - A record read from the store before a change but filled in after the change's invalidation
//   would be stale forever: every fill carries a ticket taken before its store read, and is refused
//   when the id was invalidated after the ticket (or the cache was dropped, or the recent
//   invalidations no longer reach back to it).
// - The cache serves and fills only while the hub follows the stream from a verified position on
//   the store's current primary (Follow): any failed read, cursor re-check, move to another primary
//   (a write may have been lost with the old one) or shutdown drops every record (Drop) until the
//   hub follows again. Lookups and tickets name the store's PrimaryGeneration, so a move the hub
//   has not noticed yet already misses.
// - Records not final are never cached: they change without events (a uuid, a claim ending, a claim
//   abandoned and deleted).
// - A record is kept at most until its stored key may have expired (updated_at + retention, less a
//   margin for clocks), at most `max_age` after it was read (so a change that ever reached no
//   cache, e.g. one written by a replica of a release without change notices, is served stale for
//   that long at most, not for the retention period), at most `capacity` records, least recently
//   used first out.
//
// Thread-safe; every call takes one lock for a few map operations (records are shared, copied
// outside it).
class RecordCache {
 public:
  RecordCache(size_t capacity, absl::Duration retention,
              absl::Duration max_age = absl::InfiniteDuration());

  // The cached record of `id`, if any, while following at `generation`.
  std::shared_ptr<const v1::Transaction> Lookup(const std::string& id, uint64_t generation,
                                                absl::Time now);
  // Taken before a store read whose record may be cached with Fill; 0 (never accepted) while not
  // following at `generation`.
  uint64_t Ticket(uint64_t generation);
  // Caches `record` read after `ticket` was taken, if it is final, still fresh and nothing
  // invalidated it since the ticket. Whether it was cached.
  bool Fill(const v1::Transaction& record, uint64_t ticket, absl::Time now);

  // The event hub's side.
  // `id`'s record changed (an event or a change notice named it, or this replica wrote it).
  void Invalidate(const std::string& id);
  // The hub follows the stream from a verified position at `generation`: serve and fill from now.
  void Follow(uint64_t generation);
  // The hub cannot vouch for what it reads (a failed read, a cursor re-check, another primary,
  // shutdown): forget every record, and serve and fill nothing until Follow.
  void Drop();

  size_t size();
  bool following();

  // How many recent invalidations a fill is checked against; a fill whose ticket is older than
  // the oldest of them is refused.
  static constexpr size_t kRecentInvalidations = 4096;

 private:
  struct Entry {
    std::string id;
    std::shared_ptr<const v1::Transaction> record;
    absl::Time fresh_until;
  };
  void EraseLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const size_t capacity_;
  const absl::Duration retention_;
  const absl::Duration max_age_;
  absl::Mutex mutex_;
  bool following_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;
  // Grows with every invalidation, Follow and Drop; a ticket is its value when taken.
  uint64_t epoch_ ABSL_GUARDED_BY(mutex_) = 1;
  // Tickets below it are refused (taken before a Drop or Follow, or older than `recent_` reaches).
  uint64_t floor_ ABSL_GUARDED_BY(mutex_) = 2;
  // The latest invalidations, (epoch, id), oldest first.
  std::deque<std::pair<uint64_t, std::string>> recent_ ABSL_GUARDED_BY(mutex_);
  // Most recently used first.
  std::list<Entry> lru_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_RECORD_CACHE_H_
