// A bare TCP client for HTTP tests that need what a well-behaved client library will not do: send a
// header a line at a time, lie about a body's size, never finish, or read the answer before the
// body is sent. Loopback only.
#ifndef FLIKPAY_TESTS_SUPPORT_RAW_HTTP_H_
#define FLIKPAY_TESTS_SUPPORT_RAW_HTTP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flikpay::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

class RawConnection {
 public:
  // Connects to 127.0.0.1:port with TCP_NODELAY (so the client's own writes are never held back).
  static absl::StatusOr<std::unique_ptr<RawConnection>> Open(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // All of `bytes`, in one send() where the kernel allows; false once the peer has closed or reset
  // (never SIGPIPE).
  bool Send(absl::string_view bytes);
  // One response (status line, fields, Content-Length body) within `timeout`. Interim 1xx
  // answers are returned like any other.
  absl::StatusOr<RawResponse> Read(absl::Duration timeout);
  // True when the server closes the connection (EOF or reset) within `timeout`; bytes it sends
  // first are read and dropped.
  bool AwaitClose(absl::Duration timeout);
  void Close();
  int fd() const { return fd_; }

 private:
  explicit RawConnection(int fd) : fd_(fd) {}
  // Reads what is there, waiting up to `until`; 0 on EOF, -1 on timeout or error.
  int64_t ReadSome(absl::Time until);

  int fd_;
  std::string pending_;
};

// "POST <target> HTTP/1.1" with Host, Content-Length and `extra` (each line ending in \r\n), then
// the body.
std::string PostRequest(absl::string_view target, absl::string_view body,
                        absl::string_view extra = "");

// This process's resident set (VmRSS in /proc/self/status), in bytes.
int64_t ResidentBytes();

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_RAW_HTTP_H_
