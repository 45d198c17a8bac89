#include "gateway/http_client.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace flikpay::gateway {
namespace {

constexpr size_t kMaxIdleHandles = 32;
constexpr size_t kMaxResponseBytes = 4 << 20;

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

void EnsureCurlGlobalInit() {
  static CurlGlobal global;
  (void)global;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * count;
  if (body->size() + bytes > kMaxResponseBytes) return 0;  // aborts the transfer
  body->append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const size_t bytes = size * count;
  absl::string_view line(data, bytes);
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    (*headers)[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return bytes;
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

HttpClient::HttpClient() { EnsureCurlGlobalInit(); }

HttpClient::~HttpClient() {
  absl::MutexLock lock(&mutex_);
  for (void* handle : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(handle));
}

void* HttpClient::AcquireHandle() {
  {
    absl::MutexLock lock(&mutex_);
    if (!idle_handles_.empty()) {
      void* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  return curl_easy_init();
}

void HttpClient::ReleaseHandle(void* handle) {
  absl::MutexLock lock(&mutex_);
  if (idle_handles_.size() < kMaxIdleHandles) {
    idle_handles_.push_back(handle);
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

HttpExchange HttpClient::Send(const HttpRequest& request) {
  HttpExchange exchange;
  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) {
    exchange.failure = HttpExchange::Failure::kNotSent;
    exchange.failure_reason = "curl_easy_init failed";
    return exchange;
  }
  // Options from the previous use must not leak into this one; reset keeps the connection cache.
  curl_easy_reset(curl);

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& [name, value] : request.headers) {
    headers.reset(curl_slist_append(headers.release(), absl::StrCat(name, ": ", value).c_str()));
  }
  // libcurl would otherwise add "Expect: 100-continue" to larger POSTs and wait for it.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   std::max<long>(1, absl::ToInt64Milliseconds(request.timeout)));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   std::max<long>(1, absl::ToInt64Milliseconds(request.connect_timeout)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &exchange.response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &exchange.response.headers);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  // Set on every request, not left to libcurl's defaults: a payment gateway is only ever reached
  // over TLS 1.2 or later with its certificate and host name verified.
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  // Redirects are not followed: a 3xx from the gateway is an answer, not a new address.
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }

  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &exchange.response.status);
  } else {
    // CURLINFO_REQUEST_SIZE counts the request bytes written to the socket:
    // zero means the peer cannot have seen the request, whatever went wrong.
    long request_bytes = 0;
    curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &request_bytes);
    exchange.failure =
        request_bytes == 0 ? HttpExchange::Failure::kNotSent : HttpExchange::Failure::kNoAnswer;
    exchange.failure_reason = curl_easy_strerror(code);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  ReleaseHandle(curl);
  return exchange;
}

std::string RequestUriOf(const std::string& url) {
  std::string uri = "/";
  CURLU* parsed = curl_url();
  if (curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* path = nullptr;
    char* query = nullptr;
    if (curl_url_get(parsed, CURLUPART_PATH, &path, 0) == CURLUE_OK && path) {
      uri = path;
    }
    if (curl_url_get(parsed, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
      absl::StrAppend(&uri, "?", query);
    }
    curl_free(path);
    curl_free(query);
  }
  curl_url_cleanup(parsed);
  return uri;
}

}  // namespace flikpay::gateway
