#include "server/caller_gate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace flikpay::server {

CallerGate::Pass::~Pass() {
  if (gate_ != nullptr) gate_->Leave(caller_);
}

absl::StatusOr<CallerGate::Pass> CallerGate::Enter(const std::string& caller, int max_concurrent,
                                                   int per_second, absl::Time now,
                                                   absl::Duration* retry_after) {
  absl::MutexLock lock(&mutex_);
  State& state = callers_[caller];
  if (state.running >= max_concurrent) {
    // A running call usually ends within a gateway round trip.
    *retry_after = absl::Milliseconds(100);
    return absl::ResourceExhaustedError(absl::StrCat("caller ", caller, " has ", state.running,
                                                     " calls running, its limit; retry after ",
                                                     absl::FormatDuration(*retry_after)));
  }
  const absl::Duration interval = absl::Seconds(1) / std::max(per_second, 1);
  const absl::Duration burst = absl::Seconds(1);
  const absl::Time due = std::max(state.next_due, now);
  if (due - now > burst) {
    *retry_after = due - now - burst;
    return absl::ResourceExhaustedError(absl::StrCat("caller ", caller, " is above its rate of ",
                                                     per_second, " calls per second; retry after ",
                                                     absl::FormatDuration(*retry_after)));
  }
  state.next_due = due + interval;
  ++state.running;
  return Pass(this, caller);
}

int CallerGate::running(const std::string& caller) const {
  absl::MutexLock lock(&mutex_);
  auto found = callers_.find(caller);
  return found == callers_.end() ? 0 : found->second.running;
}

void CallerGate::Leave(const std::string& caller) {
  absl::MutexLock lock(&mutex_);
  auto found = callers_.find(caller);
  if (found == callers_.end()) return;
  --found->second.running;
  // Forget callers that are idle and back within their rate, so the map does not grow with every
  // caller ever seen.
  if (found->second.running == 0 && found->second.next_due < absl::Now()) callers_.erase(found);
}

}  // namespace flikpay::server
