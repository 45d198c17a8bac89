// Fair share between callers on one replica: how many money calls (and refreshing GetStatus) each
// caller may have running at once, and how fast it may start them. Without it one caller's burst
// of slow payouts takes every gateway thread and every other caller waits behind it.
#ifndef FLIKPAY_SERVER_CALLER_GATE_H_
#define FLIKPAY_SERVER_CALLER_GATE_H_

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace flikpay::server {

class CallerGate {
 public:
  // Held for the length of one call; gives its place back when destroyed.
  class Pass {
   public:
    Pass() = default;
    Pass(Pass&& other) noexcept : gate_(other.gate_), caller_(std::move(other.caller_)) {
      other.gate_ = nullptr;
    }
    Pass& operator=(Pass&&) = delete;
    ~Pass();

   private:
    friend class CallerGate;
    Pass(CallerGate* gate, std::string caller) : gate_(gate), caller_(std::move(caller)) {}
    CallerGate* gate_ = nullptr;
    std::string caller_;
  };

  // A pass for one call, or RESOURCE_EXHAUSTED saying which limit and when to retry: `retry_after`
  // is set to the hint (also in the message).
  absl::StatusOr<Pass> Enter(const std::string& caller, int max_concurrent, int per_second,
                             absl::Time now, absl::Duration* retry_after);

  int running(const std::string& caller) const;

 private:
  void Leave(const std::string& caller);

  struct State {
    int running = 0;
    // Generic cell rate: the time the caller's next call is due if it keeps to its rate; up to
    // one second of burst ahead of it is allowed.
    absl::Time next_due = absl::InfinitePast();
  };
  mutable absl::Mutex mutex_;
  std::map<std::string, State> callers_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_CALLER_GATE_H_
