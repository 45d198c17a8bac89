#include "tests/support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace flikpay::testing {

absl::StatusOr<std::unique_ptr<RawConnection>> RawConnection::Open(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", errno));
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect 127.0.0.1:", port, ": errno ", error));
  }
  return std::unique_ptr<RawConnection>(new RawConnection(fd));
}

RawConnection::~RawConnection() { Close(); }

void RawConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::Send(absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

int64_t RawConnection::ReadSome(absl::Time until) {
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(until - absl::Now());
    if (left_ms < 0) return -1;
    pollfd poll_fd{fd_, POLLIN, 0};
    const int ready = ::poll(&poll_fd, 1, static_cast<int>(left_ms));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return -1;
    char chunk[16 * 1024];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == ECONNRESET ? 0 : -1;
    pending_.append(chunk, static_cast<size_t>(n));
    return n;
  }
}

absl::StatusOr<RawResponse> RawConnection::Read(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  size_t head_end;
  while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos) {
    const int64_t n = ReadSome(until);
    if (n == 0) return absl::UnavailableError("closed before a response");
    if (n < 0) return absl::DeadlineExceededError("no response in time");
  }
  RawResponse response;
  std::vector<std::string> lines = absl::StrSplit(pending_.substr(0, head_end), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &response.status)) {
    return absl::DataLossError(absl::StrCat("bad status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) return absl::DataLossError("bad field line");
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  size_t length = 0;
  if (auto it = response.headers.find("content-length"); it != response.headers.end()) {
    if (!absl::SimpleAtoi(it->second, &length)) return absl::DataLossError("bad Content-Length");
  }
  const size_t body_start = head_end + 4;
  while (pending_.size() < body_start + length) {
    const int64_t n = ReadSome(until);
    if (n == 0) return absl::UnavailableError("closed in the middle of a body");
    if (n < 0) return absl::DeadlineExceededError("body not complete in time");
  }
  response.body = pending_.substr(body_start, length);
  pending_.erase(0, body_start + length);
  return response;
}

bool RawConnection::AwaitClose(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (true) {
    const int64_t n = ReadSome(until);
    if (n == 0) return true;
    if (n < 0) return false;
    pending_.clear();
  }
}

std::string PostRequest(absl::string_view target, absl::string_view body, absl::string_view extra) {
  return absl::StrCat("POST ", target,
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ", body.size(), "\r\n",
                      extra, "\r\n", body);
}

int64_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:")) {
      int64_t kilobytes = 0;
      absl::string_view number = absl::StripSuffix(absl::StripAsciiWhitespace(rest), "kB");
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(number), &kilobytes)) return kilobytes * 1024;
    }
  }
  return -1;
}

}  // namespace flikpay::testing
