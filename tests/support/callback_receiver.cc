#include "tests/support/callback_receiver.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flikpay::testing {

CallbackReceiver::CallbackReceiver() {
  server_.Post(".*", [this](const httplib::Request& request, httplib::Response& response) {
    gateway::InboundCallback callback;
    callback.method = request.method;
    callback.request_uri = request.target;
    callback.body = request.body;
    for (const auto& [name, value] : request.headers) {
      callback.headers[absl::AsciiStrToLower(name)] = value;
    }
    absl::MutexLock lock(&mutex_);
    received_.push_back(std::move(callback));
    if (fail_next_ > 0) {
      --fail_next_;
      response.status = 500;
      response.set_content("try again", "text/plain");
      return;
    }
    response.set_content("OK", "text/plain");
  });
  // One request per connection: otherwise stop() waits for idle keep-alive connections to time out,
  // seconds per test.
  server_.set_keep_alive_max_count(1);
  port_ = server_.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // stop() is a no-op until the listen loop runs, so do not hand out the object before then.
  while (!server_.is_running()) absl::SleepFor(absl::Milliseconds(1));
}

CallbackReceiver::~CallbackReceiver() {
  server_.stop();
  thread_.join();
}

std::string CallbackReceiver::Url(const std::string& query) const {
  return absl::StrCat("http://127.0.0.1:", port_, "/callbacks/bankart", query.empty() ? "" : "?",
                      query);
}

void CallbackReceiver::FailNext(int count) {
  absl::MutexLock lock(&mutex_);
  fail_next_ = count;
}

std::optional<gateway::InboundCallback> CallbackReceiver::WaitFor(
    const std::string& merchant_transaction_id, int nth, absl::Duration timeout) {
  const std::string needle = absl::StrCat("\"", merchant_transaction_id, "\"");
  auto nth_match = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) -> const gateway::InboundCallback* {
    int seen = 0;
    for (const gateway::InboundCallback& callback : received_) {
      if (absl::StrContains(callback.body, needle) && ++seen == nth) return &callback;
    }
    return nullptr;
  };
  absl::MutexLock lock(&mutex_);
  auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return nth_match() != nullptr; };
  mutex_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  const gateway::InboundCallback* match = nth_match();
  if (match == nullptr) return std::nullopt;
  return *match;
}

int CallbackReceiver::CountFor(const std::string& merchant_transaction_id) {
  const std::string needle = absl::StrCat("\"", merchant_transaction_id, "\"");
  absl::MutexLock lock(&mutex_);
  int count = 0;
  for (const gateway::InboundCallback& callback : received_) {
    count += absl::StrContains(callback.body, needle) ? 1 : 0;
  }
  return count;
}

std::vector<gateway::InboundCallback> CallbackReceiver::All() {
  absl::MutexLock lock(&mutex_);
  return received_;
}

}  // namespace flikpay::testing
