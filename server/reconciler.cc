#include "server/reconciler.h"

#include "core/state_machine.h"
#include "server/log.h"

namespace flikpay::server {

Reconciler::Reconciler(PaymentService& service, store::Store& store, Metrics& metrics,
                       ReconcilerConfig config)
    : service_(service), store_(store), metrics_(metrics), config_(std::move(config)) {}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() {
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(config_.interval)) RunOnce();
  });
}

void Reconciler::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::RunOnce() {
  const absl::Time now = absl::Now();
  if (absl::StatusOr<store::Store::Backlog> backlog = store_.CheckBacklog(now); backlog.ok()) {
    metrics_.reconciler_backlog.Set(static_cast<double>(backlog->due));
    metrics_.reconciler_lag_seconds.Set(absl::ToDoubleSeconds(backlog->oldest));
  } else {
    StoreFailed("cannot measure the backlog", "", backlog.status());
  }
  service_.ObserveStatusQuota();
  absl::StatusOr<std::vector<std::string>> due = store_.DueForCheck(now, config_.batch);
  if (!due.ok()) {
    // Redis is down; try again next pass, and say so now and then.
    if (store_failures_.ShouldLog()) {
      Log(LogLevel::kWarning, "reconciler: cannot read the watch list (%d passes so far): %s",
          store_failures_.count(), due.status().message());
    }
    return;
  }
  if (store_failures_.count() > 0) {
    Log(LogLevel::kInfo, "reconciler: the watch list is readable again");
    store_failures_.Reset();
  }
  for (const std::string& id : *due) {
    if (stop_.HasBeenNotified()) return;
    CheckOne(id);
  }
}

void Reconciler::CheckOne(const std::string& id) {
  // Every line about this check names the transaction in a field of its own.
  const LogContext log_context{"", "", "reconcile", id};
  const ScopedLogContext scope(log_context);
  absl::StatusOr<bool> leased = store_.TryLease(id, config_.owner, config_.lease);
  if (!leased.ok()) {
    StoreFailed("cannot lease", id, leased.status());
    return;
  }
  if (!*leased) return;  // another replica has it
  absl::StatusOr<v1::Transaction> result =
      service_.Reconcile(id, absl::Now() + config_.query_timeout, config_.not_found_grace);
  if (absl::IsResourceExhausted(result.status())) {
    // Its class's share of the status-query quota is spent: move it behind the others due, so a
    // pass over many silent PENDING ones still reaches the UNKNOWN outcome after them.
    if (absl::Status s = store_.ScheduleCheck(id, absl::Now() + service_.status_quota_window() / 4);
        !s.ok()) {
      StoreFailed("cannot defer", id, s);
    }
    if (absl::Status s = store_.ReleaseLease(id, config_.owner); !s.ok()) {
      StoreFailed("cannot release the lease", id, s);
    }
    return;
  }
  metrics_.reconciler_checks.Increment();
  // A checked transaction was rescheduled by the report it produced (the service's schedule
  // policy). What is left here: a record gone with its retention, one that was final already, and
  // a check that failed.
  absl::Status scheduled;
  if (!result.ok() && absl::IsNotFound(result.status())) {
    scheduled = store_.ScheduleCheck(id, absl::InfiniteFuture());
  } else if (!result.ok()) {
    Log(LogLevel::kWarning, "reconciler: %s not settled: %s", id, result.status().message());
    scheduled = store_.ScheduleCheck(id, absl::Now() + service_.schedule().recheck_after);
  } else if (core::IsFinal(result->status())) {
    scheduled = store_.ScheduleCheck(id, absl::InfiniteFuture());
  }
  if (!scheduled.ok()) StoreFailed("cannot reschedule", id, scheduled);
  if (absl::Status s = store_.ReleaseLease(id, config_.owner); !s.ok()) {
    StoreFailed("cannot release the lease", id, s);
  }
}

void Reconciler::StoreFailed(absl::string_view what, absl::string_view id,
                             const absl::Status& status) {
  metrics_.store_unavailable.Increment();
  if (operation_failures_.ShouldLog()) {
    Log(LogLevel::kWarning, "reconciler: %s%s%s (%d failures so far): %s", what,
        id.empty() ? "" : " ", id, operation_failures_.count(), status.message());
  }
}

}  // namespace flikpay::server
