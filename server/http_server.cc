#include "server/http_server.h"

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/address.h"
#include "server/executor.h"

namespace flikpay::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kReadChunk = 8 * 1024;
constexpr size_t kLingerChunk = 4 * 1024;
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

// What a refused request is told: the status's own words, nothing taken from the request.
ListenerResponse Fixed(int status) {
  return {status, "text/plain", absl::StrCat(absl::AsciiStrToLower(Reason(status)), "\n")};
}

// Head and body in one buffer, so the answer leaves in one write (one segment for the small
// answers flikpay gives): nothing for Nagle's algorithm to hold back waiting on a delayed ACK.
std::string Serialize(const ListenerResponse& response, bool keep_alive, int version) {
  const bool safe_type = !response.content_type.empty() &&
                         response.content_type.find_first_of("\r\n") == std::string::npos;
  std::string out =
      absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                   "\r\nContent-Type: ", safe_type ? response.content_type : "text/plain",
                   "\r\nContent-Length: ", response.body.size(), "\r\n");
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  out += response.body;
  return out;
}

absl::string_view View(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

class Connection;

// Body bytes a request holds of the listener's budget, given back when the last holder (the parser,
// then the worker running the handler) lets go.
class BodyCharge {
 public:
  explicit BodyCharge(std::atomic<size_t>& pool) : pool_(pool) {}
  ~BodyCharge() { pool_ -= bytes_; }
  BodyCharge(const BodyCharge&) = delete;
  BodyCharge& operator=(const BodyCharge&) = delete;
  bool Take(size_t bytes, size_t limit) {
    if (pool_.fetch_add(bytes) + bytes > limit) {
      pool_ -= bytes;
      return false;
    }
    bytes_ += bytes;
    return true;
  }

 private:
  std::atomic<size_t>& pool_;
  size_t bytes_ = 0;
};

}  // namespace

class HttpListener::Impl {
 public:
  explicit Impl(HttpListenerOptions options)
      : options_(std::move(options)),
        acceptor_(asio::make_strand(ioc_)),
        accept_retry_(acceptor_.get_executor()) {}
  ~Impl() { Stop(); }

  void Route(const std::string& method, const std::string& path, RouteHandler handler) {
    absl::MutexLock lock(&routes_mu_);
    routes_[{method, path}] = std::move(handler);
  }

  // 0 with the handler of the route, or the status that refuses the request.
  int Lookup(const std::string& method, const std::string& target, RouteHandler* handler) const {
    const std::string path = target.substr(0, target.find('?'));
    absl::ReaderMutexLock lock(&routes_mu_);
    if (auto it = routes_.find({method, path}); it != routes_.end()) {
      *handler = it->second;
      return 0;
    }
    for (const auto& [key, unused] : routes_) {
      if (key.second == path) return 405;
    }
    return 404;
  }

  absl::Status Start(const std::string& address);
  void Stop();

  void Register(Connection* connection, std::weak_ptr<Connection> weak) {
    absl::MutexLock lock(&connections_mu_);
    connections_[connection] = std::move(weak);
  }
  void Unregister(Connection* connection) {
    absl::MutexLock lock(&connections_mu_);
    connections_.erase(connection);
  }

  const HttpListenerOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<size_t> buffered_body_{0};
  int port_ = 0;
  // Declared before the io_context: connections, destroyed with its pending handlers, unregister.
  mutable absl::Mutex connections_mu_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_
      ABSL_GUARDED_BY(connections_mu_);
  mutable absl::Mutex routes_mu_;
  std::map<std::pair<std::string, std::string>, RouteHandler> routes_ ABSL_GUARDED_BY(routes_mu_);
  std::unique_ptr<Executor> workers_;

 private:
  void Accept();

  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_;
  std::vector<std::thread> threads_;
  bool started_ = false;
  bool stopped_ = false;
};

namespace {

// Beast's parser with flikpay's limits checked as each part arrives: fields counted one by one,
// the content coding and the route checked once the header is complete (so nothing of the body is
// read for a request that will be refused), the body capped whether framed by Content-Length or
// chunked, and the size of a chunk refused from its chunk header, before its bytes are read.
class RequestParser final : public http::basic_parser<true> {
 public:
  explicit RequestParser(HttpListener::Impl& server)
      : server_(server), charge_(std::make_shared<BodyCharge>(server.buffered_body_)) {
    header_limit(static_cast<std::uint32_t>(server.options_.max_header_bytes));
    body_limit(server.options_.max_body_bytes);
    eager(true);
  }

  ListenerRequest& request() { return request_; }
  RouteHandler& handler() { return handler_; }
  std::shared_ptr<BodyCharge>& charge() { return charge_; }
  int version() const { return version_; }
  // The status a refused request gets, given the error put() returned.
  int RefusalStatus(const error_code& ec) const {
    if (refusal_ != 0) return refusal_;
    if (ec == http::error::header_limit) return 431;
    if (ec == http::error::body_limit) return 413;
    if (ec == http::error::bad_version) return 505;
    return 400;
  }
  bool ExpectsContinue() const {
    auto it = request_.headers.find("expect");
    return version_ == 11 && it != request_.headers.end() &&
           absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(it->second), "100-continue");
  }

 private:
  void Refuse(int status, error_code& ec) {
    refusal_ = status;
    ec = asio::error::operation_not_supported;
  }
  bool BodyFits(size_t more) const {
    return more <= server_.options_.max_body_bytes - request_.body.size();
  }

  void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                       int version, error_code& ec) override {
    version_ = version;
    if (version != 10 && version != 11) return Refuse(505, ec);
    request_.method.assign(method.data(), method.size());
    request_.target.assign(target.data(), target.size());
  }
  void on_response_impl(int, beast::string_view, int, error_code& ec) override {
    ec = http::error::bad_method;  // a request parser never sees a status line
  }
  void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                     error_code& ec) override {
    if (++fields_ > server_.options_.max_header_fields) return Refuse(431, ec);
    // Chunked trailers are counted but kept out: they would arrive after, and could replace, the
    // fields the request was admitted on.
    if (is_header_done()) return;
    request_.headers[absl::AsciiStrToLower(View(name))] = std::string(View(value));
  }
  void on_header_impl(error_code& ec) override {
    const auto& headers = request_.headers;
    // Nothing is ever decompressed: Bankart signs the bytes it sends, and a small gzip body can
    // unpack to hundreds of megabytes before any signature is checked.
    if (auto it = headers.find("content-encoding");
        it != headers.end() &&
        !absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(it->second), "identity")) {
      return Refuse(415, ec);
    }
    // Chunked is the only transfer coding understood (RFC 9112 6.1: others are 501).
    if (auto it = headers.find("transfer-encoding");
        it != headers.end() &&
        !absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(it->second), "chunked")) {
      return Refuse(501, ec);
    }
    if (const int status = server_.Lookup(request_.method, request_.target, &handler_);
        status != 0) {
      return Refuse(status, ec);
    }
  }
  // No reserve from Content-Length: memory follows the bytes that actually arrive.
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(beast::string_view body, error_code& ec) override {
    if (!BodyFits(body.size())) {
      Refuse(413, ec);
      return 0;
    }
    if (!charge_->Take(body.size(), server_.options_.max_buffered_body_bytes)) {
      Refuse(503, ec);
      return 0;
    }
    request_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t size, beast::string_view, error_code& ec) override {
    if (size > server_.options_.max_body_bytes - request_.body.size()) Refuse(413, ec);
  }
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(error_code&) override {}

  HttpListener::Impl& server_;
  ListenerRequest request_;
  RouteHandler handler_;
  std::shared_ptr<BodyCharge> charge_;
  size_t fields_ = 0;
  int version_ = 11;
  int refusal_ = 0;
};

// One accepted connection, on its own strand: every member is touched only there. Requests on it
// are handled one at a time (a pipelined one waits in the buffer), so each connection has at most
// one request with the workers and the workers' queue is bounded by the connection cap as well.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpListener::Impl& server, tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(std::max(server.options_.max_header_bytes, kReadChunk) + kReadChunk) {
    boost::system::error_code ignored;
    const tcp::endpoint far = socket_.remote_endpoint(ignored);
    if (!ignored) {
      peer_ = far.address().is_v4()
                  ? absl::StrCat("ipv4:", far.address().to_string(), ":", far.port())
                  : absl::StrCat("ipv6:[", far.address().to_string(), "]:", far.port());
    }
  }
  ~Connection() {
    server_.Unregister(this);
    --server_.open_;
  }

  asio::any_io_executor executor() { return socket_.get_executor(); }

  void Start() {
    server_.Register(this, weak_from_this());
    // Stop() sets the flag before it collects the registered connections, so one registered too
    // late for it sees the flag here.
    if (server_.stopping_) return Close();
    NextRequest();
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    ++timer_generation_;
    timer_.cancel();
    error_code ignored;
    socket_.close(ignored);
    parser_.reset();
  }

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kLingering, kClosed };

  const HttpListenerOptions& options() const { return server_.options_; }

  void NextRequest() {
    parser_.emplace(server_);
    continue_sent_ = false;
    request_bytes_ = buffer_.size();
    if (buffer_.size() > 0) {  // pipelined: its first bytes are here already
      phase_ = Phase::kReading;
      Arm(options().request_deadline);
      return Parse();
    }
    phase_ = Phase::kIdle;
    Arm(options().idle_timeout);
    ReadMore();
  }

  void ReadMore() {
    const size_t room = buffer_.max_size() - buffer_.size();
    // The buffer only fills with an unfinished header or an endless chunk-size line.
    if (room == 0) return Refuse(parser_->is_header_done() ? 413 : 431);
    socket_.async_read_some(
        buffer_.prepare(std::min(room, kReadChunk)),
        [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(error_code ec, size_t n) {
    if (phase_ != Phase::kIdle && phase_ != Phase::kReading) return;
    if (ec) return Close();  // gone, or reset: nobody to answer
    buffer_.commit(n);
    request_bytes_ += n;
    if (phase_ == Phase::kIdle) {
      // The deadline is set once, at the first byte, and not moved by later ones: a client
      // trickling a byte at a time gets no longer than one sending everything at once.
      phase_ = Phase::kReading;
      Arm(options().request_deadline);
    }
    Parse();
  }

  void Parse() {
    while (buffer_.size() > 0) {
      error_code ec;
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) return Refuse(parser_->RefusalStatus(ec));
      if (parser_->is_done()) return Dispatch();
      if (used == 0) break;
    }
    // Until the header is complete every byte of the request is header.
    if (!parser_->is_header_done() && request_bytes_ > options().max_header_bytes) {
      return Refuse(431);
    }
    if (parser_->is_header_done() && !continue_sent_ && parser_->ExpectsContinue()) {
      // Only now, with the header accepted: a refused request's body is never asked for.
      continue_sent_ = true;
      asio::async_write(socket_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (self->phase_ != Phase::kReading) return;
                          if (ec) return self->Close();
                          self->ReadMore();
                        });
      return;
    }
    ReadMore();
  }

  void Dispatch() {
    // The handler's time is not the client's: the deadline covers reading the request only.
    ++timer_generation_;
    timer_.cancel();
    phase_ = Phase::kHandling;
    if (server_.stopping_) return Close();
    keep_alive_ = parser_->keep_alive();
    version_ = parser_->version();
    ListenerRequest request = std::move(parser_->request());
    request.peer = peer_;
    RouteHandler handler = std::move(parser_->handler());
    std::shared_ptr<BodyCharge> charge = std::move(parser_->charge());
    parser_.reset();
    const bool queued =
        server_.workers_->Run([self = shared_from_this(), request = std::move(request),
                               handler = std::move(handler), charge = std::move(charge)] {
          if (self->server_.stopping_) return;
          ListenerResponse response;
          try {
            response = handler(request);
          } catch (...) {
            response = Fixed(500);
          }
          asio::post(self->executor(), [self, response = std::move(response)]() mutable {
            self->Respond(std::move(response));
          });
        });
    if (!queued) {
      keep_alive_ = false;
      Respond(Fixed(503));
    }
  }

  void Respond(ListenerResponse response) {
    if (phase_ == Phase::kClosed) return;
    out_ = Serialize(response, keep_alive_ && !server_.stopping_, version_);
    phase_ = Phase::kWriting;
    Arm(options().write_timeout);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(error_code ec) {
    if (phase_ != Phase::kWriting) return;
    if (ec) return Close();
    out_ = std::string();
    if (keep_alive_ && !server_.stopping_) return NextRequest();
    Linger();
  }

  // Answers and closes: the request was refused, so whatever else is on the connection is unread.
  void Refuse(int status) {
    if (phase_ == Phase::kClosed) return;
    if (parser_) version_ = parser_->version();
    error_code ignored;
    socket_.cancel(ignored);  // a read is pending when the deadline fires
    parser_.reset();
    keep_alive_ = false;
    Respond(Fixed(status));
  }

  // Closing with unread bytes in the socket makes the kernel reset the connection, which can throw
  // away the answer before the client reads it; so stop sending and read what is still coming for
  // a moment, into a small scratch buffer, never kept.
  void Linger() {
    phase_ = Phase::kLingering;
    buffer_.clear();
    buffer_.shrink_to_fit();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    Arm(options().linger);
    scratch_ = std::make_unique<char[]>(kLingerChunk);
    lingered_ = 0;
    LingerMore();
  }

  void LingerMore() {
    socket_.async_read_some(asio::buffer(scratch_.get(), kLingerChunk),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (self->phase_ != Phase::kLingering) return;
                              self->lingered_ += n;
                              if (ec || self->lingered_ >= self->options().linger_bytes) {
                                return self->Close();
                              }
                              self->LingerMore();
                            });
  }

  // One timer per connection, re-armed for each phase; a generation tells a stale expiry (one
  // already queued when the timer was re-armed) from the current one.
  void Arm(absl::Duration after) {
    const uint64_t generation = ++timer_generation_;
    timer_.expires_after(absl::ToChronoNanoseconds(after));
    timer_.async_wait([self = shared_from_this(), generation](error_code ec) {
      if (ec || generation != self->timer_generation_) return;
      self->OnTimer();
    });
  }

  void OnTimer() {
    switch (phase_) {
      case Phase::kReading:
        return Refuse(408);
      case Phase::kIdle:
      case Phase::kWriting:
      case Phase::kLingering:
        return Close();
      case Phase::kHandling:
      case Phase::kClosed:
        return;
    }
  }

  HttpListener::Impl& server_;
  tcp::socket socket_;
  std::string peer_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  Phase phase_ = Phase::kIdle;
  size_t request_bytes_ = 0;
  bool continue_sent_ = false;
  bool keep_alive_ = false;
  int version_ = 11;
  std::string out_;
  std::unique_ptr<char[]> scratch_;
  size_t lingered_ = 0;
};

}  // namespace

absl::Status HttpListener::Impl::Start(const std::string& address) {
  if (started_) return absl::FailedPreconditionError("listener already started");
  // Zero workers would queue requests forever, zero connections refuse everyone.
  if (options_.io_threads < 1 || options_.worker_threads < 1 || options_.max_connections < 1 ||
      options_.max_queued_requests < 1 || options_.max_body_bytes < 1 ||
      options_.max_header_fields < 1 || options_.max_header_bytes < 64) {
    return absl::InvalidArgumentError("listener options: every count and size must be positive");
  }
  absl::StatusOr<core::HostPort> parsed = core::ParseHostPort(address);
  if (!parsed.ok()) return parsed.status();
  std::string host = parsed->host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  error_code ec;
  tcp::endpoint endpoint;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(ip, static_cast<unsigned short>(parsed->port));
  } else {
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host, std::to_string(parsed->port), ec);
    if (ec || results.empty()) {
      return absl::UnavailableError(absl::StrCat("cannot resolve ", host));
    }
    endpoint = results.begin()->endpoint();
  }
  auto failed = [&](const char* what) {
    error_code ignored;
    acceptor_.close(ignored);
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", what, ": ", ec.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec)) return failed("socket");
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), ec)) return failed("SO_REUSEADDR");
  if (acceptor_.bind(endpoint, ec)) return failed("bind");
  // A real backlog: with httplib's 5, a burst of new connections waited for SYN retransmits.
  if (acceptor_.listen(options_.listen_backlog, ec)) return failed("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return failed("getsockname");

  workers_ =
      std::make_unique<Executor>("http", options_.worker_threads, options_.max_queued_requests);
  work_.emplace(ioc_.get_executor());
  started_ = true;
  asio::post(acceptor_.get_executor(), [this] { Accept(); });
  for (int i = 0; i < options_.io_threads; ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  return absl::OkStatus();
}

void HttpListener::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors, most likely: try again shortly rather than spin on the error.
      accept_retry_.expires_after(std::chrono::milliseconds(50));
      accept_retry_.async_wait([this](error_code wait_ec) {
        if (!wait_ec && !stopping_) Accept();
      });
      return;
    }
    if (open_.load() >= options_.max_connections) {
      // Closed at once, never queued: a flood of connections costs an accept and a close each.
      ++refused_;
      error_code ignored;
      socket.close(ignored);
      return Accept();
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    ++open_;
    auto connection = std::make_shared<Connection>(*this, std::move(socket));
    asio::post(connection->executor(), [connection] { connection->Start(); });
    Accept();
  });
}

void HttpListener::Impl::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  std::vector<std::shared_ptr<Connection>> live;
  {
    absl::MutexLock lock(&connections_mu_);
    for (const auto& [unused, weak] : connections_) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
  }
  for (std::shared_ptr<Connection>& connection : live) {
    asio::post(connection->executor(), [connection] { connection->Close(); });
  }
  live.clear();
  // With every socket closed the I/O threads run out of work and return; a handler still running
  // posts its answer to a closed connection, which drops it.
  work_.reset();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!ioc_.stopped() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ioc_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  // Waits for a handler that is running; queued ones see stopping_ and return.
  workers_.reset();
  // What the workers posted last, run here so each connection is released before the io_context.
  ioc_.restart();
  ioc_.poll();
}

HttpListenerOptions CallbackListenerOptions() { return HttpListenerOptions(); }

HttpListenerOptions AdminListenerOptions() {
  HttpListenerOptions options;
  options.io_threads = 1;
  options.worker_threads = 2;
  options.max_queued_requests = 16;
  options.max_connections = 64;
  options.max_body_bytes = 16 * 1024;
  return options;
}

HttpListener::HttpListener(HttpListenerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpListener::~HttpListener() { Stop(); }

void HttpListener::Route(const std::string& method, const std::string& path, RouteHandler handler) {
  impl_->Route(method, path, std::move(handler));
}

absl::Status HttpListener::Start(const std::string& address) { return impl_->Start(address); }

int HttpListener::port() const { return impl_->port_; }

void HttpListener::Stop() { impl_->Stop(); }

int HttpListener::open_connections() const { return impl_->open_.load(); }

int64_t HttpListener::refused_connections() const { return impl_->refused_.load(); }

}  // namespace flikpay::server
