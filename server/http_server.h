// The HTTP/1.1 listener behind flikpay's two HTTP ports: Bankart's callbacks (the one port the
// internet reaches) and the admin port. Every limit is enforced while the request is read, before
// its body is buffered or a handler runs, so a hostile client costs a bounded amount of memory, one
// connection slot and at most `request_deadline` of it.
#ifndef FLIKPAY_SERVER_HTTP_SERVER_H_
#define FLIKPAY_SERVER_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace flikpay::server {

struct ListenerRequest {
  std::string method;
  // As on the request line, query included: Bankart signs exactly these bytes.
  std::string target;
  // Names in lower case; a name sent twice keeps its last value.
  std::map<std::string, std::string> headers;
  std::string body;  // the exact bytes received (no content coding is ever accepted)
  // The connection's far end, "ipv4:203.0.113.5:40112" (gRPC's spelling): for the access log.
  std::string peer;
};

struct ListenerResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

// Runs on the listener's worker pool, never on its I/O threads, so it may block (Redis, a few ms;
// up to Redis' command timeout when Redis is down). Exceptions become a 500.
using RouteHandler = std::function<ListenerResponse(const ListenerRequest&)>;

struct HttpListenerOptions {
  // I/O threads: parsing, timers and writes only, so a few serve many connections.
  int io_threads = 2;
  // Threads running route handlers, and how many parsed requests may wait for one; a request
  // beyond that is answered 503 at once (Bankart retries) rather than queued without bound.
  int worker_threads = 8;
  size_t max_queued_requests = 256;
  // Open connections; one beyond is closed as soon as it is accepted.
  int max_connections = 512;
  // The kernel caps it at net.core.somaxconn.
  int listen_backlog = 1024;
  // Request line plus fields (431 beyond either), and the body, however it is framed (413).
  size_t max_header_bytes = 16 * 1024;
  size_t max_header_fields = 100;
  size_t max_body_bytes = 256 * 1024;
  // Body bytes held by all requests together, from their first byte until their handler returns;
  // a request that would go beyond is answered 503. Without it, max_connections clients could
  // each hold a max_body_bytes body.
  size_t max_buffered_body_bytes = 32 << 20;
  // From a request's first byte to its last, however evenly the bytes trickle in (then 408 and the
  // connection is closed). The handler's time is not counted.
  absl::Duration request_deadline = absl::Seconds(10);
  // A connection (new, or kept alive after a response) that sends nothing for this long is closed.
  absl::Duration idle_timeout = absl::Seconds(5);
  // For the response to leave; a client that does not read it loses the connection.
  absl::Duration write_timeout = absl::Seconds(10);
  // After an answer that closes the connection: how long (and how many bytes) of what the client
  // still sends are read and dropped, so the close does not reset the connection before the client
  // has read the answer.
  absl::Duration linger = absl::Seconds(1);
  size_t linger_bytes = 1 << 20;
};

// The callback port's limits (the defaults above).
HttpListenerOptions CallbackListenerOptions();
// The admin port's: its own single I/O thread and two workers, so probes and scrapes answer
// whatever the callback port is going through; tiny bodies (it takes none).
HttpListenerOptions AdminListenerOptions();

// Routes are matched on method and path (the target up to '?'), exactly; another method on a known
// path is 405, an unknown path 404, both before any body is read. Answers that refuse a request
// carry a fixed short reason, never anything of the request.
class HttpListener {
 public:
  explicit HttpListener(HttpListenerOptions options = CallbackListenerOptions());
  ~HttpListener();  // Stop()
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // May be called before or after Start (a route not yet added answers 404).
  void Route(const std::string& method, const std::string& path, RouteHandler handler);
  // "host:port"; port 0 picks a free one (see port()).
  absl::Status Start(const std::string& address);
  int port() const;
  // Closes the port and every connection, idle keep-alives included, at once; waits only for
  // handlers already running. Requests parsed but not yet handled are dropped (their clients see
  // the connection close and retry).
  void Stop();

  int open_connections() const;
  // Connections closed at accept because `max_connections` were open.
  int64_t refused_connections() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_HTTP_SERVER_H_
