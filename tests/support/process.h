#ifndef FLIKPAY_TESTS_SUPPORT_PROCESS_H_
#define FLIKPAY_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace flikpay::testing {

// A child process for integration tests (bankart-sim, redis-server, flikpay-server). Its stdout and
// stderr go to the test's stderr, prefixed with its name; it is stopped with SIGTERM (then SIGKILL)
// when this object goes away.
class ChildProcess {
 public:
  // Starts `argv` and waits until a line of its output contains `ready_marker`; returns that line.
  // Fails if the process exits or `timeout` passes first.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      std::vector<std::string> argv, const std::string& ready_marker, std::string* ready_line,
      absl::Duration timeout = absl::Seconds(20));

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status as waitpid gives it.
  int Stop(absl::Duration grace = absl::Seconds(10));
  // SIGKILL without grace: a crash.
  void Kill();
  // The lines of its output so far (the last 20,000) that contain `needle`, without the prefix.
  std::vector<std::string> OutputLinesWith(absl::string_view needle);

 private:
  ChildProcess(std::string name, pid_t pid, int output_fd);
  void Reap(int signal, absl::Duration grace);

  std::string name_;
  pid_t pid_;
  int output_fd_;
  std::thread drain_;
  absl::Mutex output_mutex_;
  std::deque<std::string> output_lines_ ABSL_GUARDED_BY(output_mutex_);
  bool reaped_ = false;
  int exit_status_ = 0;
};

// The port at the end of a line like "... listening on http://127.0.0.1:40123".
int PortFromLine(const std::string& line);

// A loopback port that was free a moment ago, for a server that cannot pick its own and tell
// (redis-server): another process may take it in between, so callers retry on failure.
int FreeLoopbackPort();

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_PROCESS_H_
