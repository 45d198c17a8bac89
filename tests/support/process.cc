#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/address.h"

namespace flikpay::testing {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(std::vector<std::string> argv,
                                                                  const std::string& ready_marker,
                                                                  std::string* ready_line,
                                                                  absl::Duration timeout) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // A test that crashes must not leave servers behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(pipe_fds[1]);
  const int fd = pipe_fds[0];
  const std::string name = argv[0].substr(argv[0].rfind('/') + 1);

  // Read line by line until the marker shows up.
  const absl::Time deadline = absl::Now() + timeout;
  std::string pending;
  std::string transcript;
  while (absl::Now() < deadline) {
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(fd, &readable);
    timeval wait{0, 100 * 1000};
    if (select(fd + 1, &readable, nullptr, nullptr, &wait) <= 0) continue;
    char buffer[4096];
    const ssize_t got = read(fd, buffer, sizeof(buffer));
    if (got <= 0) break;  // the child closed its output: it died
    pending.append(buffer, got);
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      transcript += line + "\n";
      if (line.find(ready_marker) != std::string::npos) {
        if (ready_line != nullptr) *ready_line = line;
        return std::unique_ptr<ChildProcess>(new ChildProcess(name, pid, fd));
      }
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(fd);
  return absl::UnavailableError(absl::StrCat(name, " did not become ready (\"", ready_marker,
                                             "\"); its output:\n", transcript, pending));
}

ChildProcess::ChildProcess(std::string name, pid_t pid, int output_fd)
    : name_(std::move(name)), pid_(pid), output_fd_(output_fd) {
  drain_ = std::thread([this] {
    char buffer[4096];
    ssize_t got;
    std::string prefix = "[" + name_ + "] ";
    bool at_line_start = true;
    std::string line;
    while ((got = read(output_fd_, buffer, sizeof(buffer))) > 0) {
      std::string out;
      for (ssize_t i = 0; i < got; ++i) {
        if (at_line_start) out += prefix;
        out += buffer[i];
        at_line_start = buffer[i] == '\n';
        if (at_line_start) {
          absl::MutexLock lock(&output_mutex_);
          output_lines_.push_back(std::move(line));
          if (output_lines_.size() > 20000) output_lines_.pop_front();
          line.clear();
        } else {
          line += buffer[i];
        }
      }
      std::fwrite(out.data(), 1, out.size(), stderr);
    }
  });
}

ChildProcess::~ChildProcess() {
  Stop(absl::Seconds(10));
  if (drain_.joinable()) drain_.join();
  close(output_fd_);
}

std::vector<std::string> ChildProcess::OutputLinesWith(absl::string_view needle) {
  absl::MutexLock lock(&output_mutex_);
  std::vector<std::string> found;
  for (const std::string& line : output_lines_) {
    if (absl::StrContains(line, needle)) found.push_back(line);
  }
  return found;
}

void ChildProcess::Reap(int signal, absl::Duration grace) {
  if (reaped_) return;
  kill(pid_, signal);
  const absl::Time deadline = absl::Now() + grace;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      exit_status_ = status;
      return;
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &exit_status_, 0);
  reaped_ = true;
}

int ChildProcess::Stop(absl::Duration grace) {
  Reap(SIGTERM, grace);
  return exit_status_;
}

void ChildProcess::Kill() { Reap(SIGKILL, absl::Seconds(5)); }

int PortFromLine(const std::string& line) {
  absl::StatusOr<core::HostPort> address = core::ParseHostPort(line);
  return address.ok() ? address->port : 0;
}

int FreeLoopbackPort() {
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  close(probe);
  return ntohs(address.sin_port);
}

}  // namespace flikpay::testing
