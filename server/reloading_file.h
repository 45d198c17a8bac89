// Configuration that Kubernetes may replace at any time (a mounted ConfigMap or Secret, swapped by
// a symlink): parsed at start, then re-read every `interval`. A change that does not parse is
// logged and counted, and the last good value stays in force: a typo in a rotated file must not
// lock every caller out.
#ifndef FLIKPAY_SERVER_RELOADING_FILE_H_
#define FLIKPAY_SERVER_RELOADING_FILE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "server/log.h"

namespace flikpay::server {

// The whole file, refusing more than `max_bytes` (a policy or token file is small; a huge one is a
// mistake, not something to hold in memory). INVALID_ARGUMENT naming the path.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 1 << 20);

template <typename T>
class ReloadingFile {
 public:
  using Reader = std::function<absl::StatusOr<std::string>()>;
  using Parser = std::function<absl::StatusOr<T>(const std::string& content)>;
  // Called with each version put in force (the first, then every good change), on the thread that
  // loaded it, before current() returns it.
  using OnLoad = std::function<void(const T&)>;

  // INVALID_ARGUMENT (naming the path) when the file cannot be read or parsed at start.
  static absl::StatusOr<std::unique_ptr<ReloadingFile>> Open(std::string path, Parser parser,
                                                             absl::Duration interval,
                                                             prometheus::Counter* failures) {
    return Open(
        path, [path] { return ReadSmallFile(path); }, std::move(parser), interval, failures);
  }

  // The same over any content `read` assembles (several files read as one), named `name`.
  static absl::StatusOr<std::unique_ptr<ReloadingFile>> Open(std::string name, Reader read,
                                                             Parser parser, absl::Duration interval,
                                                             prometheus::Counter* failures,
                                                             OnLoad on_load = nullptr) {
    absl::StatusOr<std::string> content = read();
    if (!content.ok()) return content.status();
    absl::StatusOr<T> value = parser(*content);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", value.status().message()));
    }
    if (on_load) on_load(*value);
    return std::unique_ptr<ReloadingFile>(new ReloadingFile(
        std::move(name), std::move(read), std::move(parser), std::move(on_load), interval, failures,
        *std::move(content), std::make_shared<const T>(*std::move(value))));
  }

  ~ReloadingFile() {
    {
      absl::MutexLock lock(&mutex_);
      stopping_ = true;
    }
    watcher_.join();
  }

  std::shared_ptr<const T> current() const {
    absl::MutexLock lock(&mutex_);
    return current_;
  }

 private:
  ReloadingFile(std::string name, Reader read, Parser parser, OnLoad on_load,
                absl::Duration interval, prometheus::Counter* failures, std::string content,
                std::shared_ptr<const T> value)
      : name_(std::move(name)),
        read_(std::move(read)),
        parser_(std::move(parser)),
        on_load_(std::move(on_load)),
        interval_(interval),
        failures_(failures),
        content_(std::move(content)),
        current_(std::move(value)) {
    watcher_ = std::thread([this] { Watch(); });
  }

  void Watch() {
    while (true) {
      {
        absl::MutexLock lock(&mutex_);
        mutex_.AwaitWithTimeout(absl::Condition(&stopping_), interval_);
        if (stopping_) return;
      }
      Reload();
    }
  }

  void Reload() {
    absl::StatusOr<std::string> content = read_();
    if (content.ok() && *content == content_) return;
    absl::StatusOr<T> value =
        content.ok() ? parser_(*content) : absl::StatusOr<T>(content.status());
    if (!value.ok()) {
      // Counted and logged once per distinct failure, not every interval.
      if (value.status().message() == last_failure_) return;
      last_failure_ = std::string(value.status().message());
      if (failures_ != nullptr) failures_->Increment();
      Log(LogLevel::kError, "%s: not reloaded, the previous version stays in force: %s", name_,
          value.status().message());
      return;
    }
    last_failure_.clear();
    content_ = *std::move(content);
    if (on_load_) on_load_(*value);
    auto fresh = std::make_shared<const T>(*std::move(value));
    absl::MutexLock lock(&mutex_);
    current_ = std::move(fresh);
    Log(LogLevel::kInfo, "%s: reloaded", name_);
  }

  const std::string name_;
  const Reader read_;
  const Parser parser_;
  const OnLoad on_load_;
  const absl::Duration interval_;
  prometheus::Counter* const failures_;
  // The watcher thread's own: the content in force, and the last failure reported.
  std::string content_;
  std::string last_failure_;
  mutable absl::Mutex mutex_;
  std::shared_ptr<const T> current_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread watcher_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_RELOADING_FILE_H_
