#include "server/record_cache.h"

#include <algorithm>

#include "core/state_machine.h"

namespace flikpay::server {
namespace {

// A record's key lives at least `retention` after its last write, which set updated_at on the
// writing replica's clock: keep a margin for that clock being ahead of Redis'.
constexpr absl::Duration kClockMargin = absl::Minutes(5);

}  // namespace

RecordCache::RecordCache(size_t capacity, absl::Duration retention, absl::Duration max_age)
    : capacity_(capacity), retention_(retention), max_age_(max_age) {}

std::shared_ptr<const v1::Transaction> RecordCache::Lookup(const std::string& id,
                                                           uint64_t generation, absl::Time now) {
  absl::MutexLock lock(&mutex_);
  if (!following_ || generation != generation_) return nullptr;
  auto found = index_.find(id);
  if (found == index_.end()) return nullptr;
  if (now >= found->second->fresh_until) {
    EraseLocked(id);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, found->second);
  return found->second->record;
}

uint64_t RecordCache::Ticket(uint64_t generation) {
  absl::MutexLock lock(&mutex_);
  if (!following_ || generation != generation_) return 0;
  return epoch_;
}

bool RecordCache::Fill(const v1::Transaction& record, uint64_t ticket, absl::Time now) {
  if (capacity_ == 0 || !core::IsFinal(record.status()) || !record.has_updated_at()) return false;
  const absl::Time fresh_until =
      std::min(absl::FromUnixSeconds(record.updated_at().seconds()) +
                   absl::Nanoseconds(record.updated_at().nanos()) + retention_ - kClockMargin,
               now + max_age_);
  if (now >= fresh_until) return false;
  auto shared = std::make_shared<const v1::Transaction>(record);
  const std::string& id = record.merchant_transaction_id();
  absl::MutexLock lock(&mutex_);
  if (!following_ || ticket < floor_) return false;
  // Invalidated since the ticket: the record may have been read before the change.
  for (auto it = recent_.rbegin(); it != recent_.rend() && it->first > ticket; ++it) {
    if (it->second == id) return false;
  }
  auto found = index_.find(id);
  if (found != index_.end()) {
    found->second->record = std::move(shared);
    found->second->fresh_until = fresh_until;
    lru_.splice(lru_.begin(), lru_, found->second);
    return true;
  }
  lru_.push_front(Entry{id, std::move(shared), fresh_until});
  index_.emplace(id, lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
  return true;
}

void RecordCache::Invalidate(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  ++epoch_;
  recent_.emplace_back(epoch_, id);
  if (recent_.size() > kRecentInvalidations) {
    // Tickets up to the dropped one's epoch can no longer be checked against it.
    floor_ = std::max(floor_, recent_.front().first);
    recent_.pop_front();
  }
  EraseLocked(id);
}

void RecordCache::Follow(uint64_t generation) {
  absl::MutexLock lock(&mutex_);
  if (following_ && generation == generation_) return;
  lru_.clear();
  index_.clear();
  recent_.clear();
  ++epoch_;
  floor_ = epoch_;
  generation_ = generation;
  following_ = true;
}

void RecordCache::Drop() {
  absl::MutexLock lock(&mutex_);
  lru_.clear();
  index_.clear();
  recent_.clear();
  ++epoch_;
  floor_ = epoch_ + 1;
  following_ = false;
}

size_t RecordCache::size() {
  absl::MutexLock lock(&mutex_);
  return lru_.size();
}

bool RecordCache::following() {
  absl::MutexLock lock(&mutex_);
  return following_;
}

void RecordCache::EraseLocked(const std::string& id) {
  auto found = index_.find(id);
  if (found == index_.end()) return;
  lru_.erase(found->second);
  index_.erase(found);
}

}  // namespace flikpay::server
