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
    metrics_.reconciler_backlog = backlog->due;
    metrics_.reconciler_lag_ms = absl::ToInt64Milliseconds(backlog->oldest);
  }
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
    absl::StatusOr<bool> leased = store_.TryLease(id, config_.owner, config_.lease);
    if (!leased.ok() || !*leased) continue;  // another replica has it
    absl::StatusOr<bool> quota = store_.TakeStatusQuery(config_.status_queries_per_minute);
    if (!quota.ok() || !*quota) {
      // This minute's status queries are spent: the rest waits.
      store_.ReleaseLease(id, config_.owner).IgnoreError();
      return;
    }
    ++metrics_.reconciler_checks;
    absl::StatusOr<v1::Transaction> result =
        service_.Reconcile(id, absl::Now() + config_.query_timeout, config_.not_found_grace);
    if (!result.ok() && !absl::IsNotFound(result.status())) {
      Log(LogLevel::kWarning, "reconciler: %s not settled: %s", id, result.status().message());
    }
    if (!result.ok() && absl::IsNotFound(result.status())) {
      // The record itself is gone (retention): nothing left to watch.
      store_.ScheduleCheck(id, absl::InfiniteFuture()).IgnoreError();
    } else if (!result.ok() || !core::IsFinal(result->status())) {
      // Not settled yet (or the gateway did not answer): look again later, never sooner than
      // Bankart's per-transaction limit allows.
      store_.ScheduleCheck(id, absl::Now() + config_.recheck_after).IgnoreError();
    }
    store_.ReleaseLease(id, config_.owner).IgnoreError();
  }
}

}  // namespace flikpay::server
