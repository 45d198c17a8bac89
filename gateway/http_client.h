#ifndef FLIKPAY_GATEWAY_HTTP_CLIENT_H_
#define FLIKPAY_GATEWAY_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace flikpay::gateway {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(15);  // the whole exchange
  absl::Duration connect_timeout = absl::Seconds(3);
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

// The result of one exchange. What a payment system must know after a failure is whether the peer
// may have acted on the request, so transport failures are split in two.
struct HttpExchange {
  enum class Failure {
    kNone,      // `response` holds the peer's answer
    kNotSent,   // no byte of the request left this process (no connection)
    kNoAnswer,  // the request was sent, or may have been; no (complete) answer
                // came back
  };
  Failure failure = Failure::kNone;
  std::string failure_reason;  // libcurl's description, for logs
  HttpResponse response;
};

// A blocking HTTP/1.1 client on libcurl. Easy handles are pooled and reused, so their connections
// are kept alive across calls. Thread-safe.
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpExchange Send(const HttpRequest& request);

 private:
  void* AcquireHandle();
  void ReleaseHandle(void* handle);

  absl::Mutex mutex_;
  std::vector<void*> idle_handles_ ABSL_GUARDED_BY(mutex_);
};

// The path-and-query part of a URL ("/api/v3/x?y=1"), "/" when the URL has no path.
std::string RequestUriOf(const std::string& url);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_HTTP_CLIENT_H_
