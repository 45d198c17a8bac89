#include "gateway/sim/bankart_sim.h"

#include <httplib.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gateway/sim/sim_protocol.h"

namespace flikpay::sim {

absl::string_view ConnectorKindName(ConnectorKind kind) {
  switch (kind) {
    case ConnectorKind::kEcommerce:
      return "ecommerce";
    case ConnectorKind::kInPerson:
      return "in_person";
    case ConnectorKind::kOutOfBand:
      return "out_of_band";
    case ConnectorKind::kPayout:
      return "payout";
  }
  return "";
}

std::optional<ConnectorKind> ParseConnectorKind(absl::string_view name) {
  for (ConnectorKind kind : {ConnectorKind::kEcommerce, ConnectorKind::kInPerson,
                             ConnectorKind::kOutOfBand, ConnectorKind::kPayout}) {
    if (name == ConnectorKindName(kind)) return kind;
  }
  return std::nullopt;
}

namespace {

using Json = nlohmann::json;
using Error = BankartSim::Error;
using TransactionType = BankartSim::TransactionType;
using Scenario = BankartSim::Scenario;

constexpr char kContentType[] = "application/json; charset=utf-8";

// The test aliases of seed 000, both forms.
const std::map<std::string, Scenario>& AliasScenarios() {
  static const auto* scenarios = new std::map<std::string, Scenario>{
      {"success.debit@bankart.flik", Scenario::kSuccess},
      {"0038670999000", Scenario::kSuccess},
      {"cancel.debit@bankart.flik", Scenario::kCancel},
      {"0038670999111", Scenario::kCancel},
      {"error.debit@bankart.flik", Scenario::kError},
      {"0038670999222", Scenario::kError},
      {"success.debit_success.refund@bankart.flik", Scenario::kSuccessRefundSuccess},
      {"0038670999333", Scenario::kSuccessRefundSuccess},
      {"success.debit_error.refund@bankart.flik", Scenario::kSuccessRefundError},
      {"0038670999444", Scenario::kSuccessRefundError},
      {"success.payout@bankart.flik", Scenario::kPayoutSuccess},
      {"0038670999555", Scenario::kPayoutSuccess},
      {"error.payout@bankart.flik", Scenario::kPayoutError},
      {"0038670999666", Scenario::kPayoutError},
      {"redirect@bankart.flik", Scenario::kAwaitingChoice},
      {"0038670999999", Scenario::kAwaitingChoice},
  };
  return *scenarios;
}

Scenario ScenarioForAlias(const std::string& alias) {
  auto it = AliasScenarios().find(absl::AsciiStrToLower(alias));
  return it == AliasScenarios().end() ? Scenario::kUnknownAlias : it->second;
}

// The five choices the redirect page offers (seed 000, "Testiranje plačil s simulatorjem").
struct Choice {
  const char* key;
  const char* label;
  Scenario scenario;
};
constexpr Choice kChoices[] = {
    {"success", "Uspešno plačilo (success)", Scenario::kSuccess},
    {"cancel", "Preklicano plačilo (payer declines)", Scenario::kCancel},
    {"error", "Neuspešno plačilo (technical error)", Scenario::kError},
    {"success_refund_success", "Uspešno plačilo za naknadno uspešno vračilo",
     Scenario::kSuccessRefundSuccess},
    {"success_refund_error", "Uspešno plačilo za naknadno neuspešno vračilo",
     Scenario::kSuccessRefundError},
};

std::optional<Scenario> ParseChoice(absl::string_view key) {
  for (const Choice& choice : kChoices) {
    if (key == choice.key) return choice.scenario;
  }
  return std::nullopt;
}

Json ErrorAnswer(int code, absl::string_view message) {
  return Json{{"success", false}, {"errorCode", code}, {"errorMessage", message}};
}

// A refusal after the request was understood: HTTP 200, returnType ERROR.
Json DeclinedAnswer(int code, absl::string_view message) {
  return Json{{"success", false},
              {"returnType", "ERROR"},
              {"errors", Json::array({Json{{"errorCode", code}, {"errorMessage", message}}})}};
}

// A string field of a JSON object; "" when absent or of another type, which every caller treats
// as missing.
std::string Text(const Json& object, absl::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

absl::string_view TypeName(TransactionType type) {
  switch (type) {
    case TransactionType::kDebit:
      return "DEBIT";
    case TransactionType::kRefund:
      return "REFUND";
    case TransactionType::kPayout:
      return "PAYOUT";
  }
  return "";
}

// Seed 000, "P2eM tipi plačila": a request to pay is valid 5 minutes (E-commerce), 90 seconds
// (In-Person) or 72 hours (Out-of-Band).
absl::Duration RtpValidity(ConnectorKind kind) {
  switch (kind) {
    case ConnectorKind::kInPerson:
      return absl::Seconds(90);
    case ConnectorKind::kOutOfBand:
      return absl::Hours(72);
    default:
      return absl::Minutes(5);
  }
}

// The error code of an answer this stand-in built, for the journal; 0 when it carries none.
int AnswerErrorCode(const Json& answer) {
  if (auto it = answer.find("errorCode"); it != answer.end() && it->is_number_integer()) {
    return it->get<int>();
  }
  if (auto it = answer.find("errors"); it != answer.end() && it->is_array() && !it->empty()) {
    const Json& first = it->front();
    if (auto code = first.find("errorCode"); code != first.end() && code->is_number_integer()) {
      return code->get<int>();
    }
  }
  return 0;
}

std::string HtmlEscape(absl::string_view text) {
  return absl::StrReplaceAll(text,
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

struct CallbackExchange {
  int status = 0;  // 0: no answer
  std::string body;
  std::string transport_error;
};

// One callback POST on a connection of its own: a receiver keeps no idle connection of ours, so one
// that stops (a replica shutting down) need not wait for it to time out. The path is sent exactly
// as signed.
CallbackExchange PostCallback(const std::string& url, const std::string& request_uri,
                              const httplib::Headers& headers, const std::string& body,
                              absl::Duration timeout) {
  const size_t scheme_end = url.find("://");
  const std::string origin =
      url.substr(0, url.find_first_of("/?#", scheme_end == std::string::npos ? 0 : scheme_end + 3));
  httplib::Client client(origin);
  if (!client.is_valid()) return {0, "", "unsupported callback URL"};
  client.set_connection_timeout(absl::ToChronoMicroseconds(std::min(timeout, absl::Seconds(3))));
  client.set_read_timeout(absl::ToChronoMicroseconds(timeout));
  client.set_write_timeout(absl::ToChronoMicroseconds(timeout));
  client.set_keep_alive(false);
  client.set_url_encode(false);
  httplib::Result result = client.Post(request_uri, headers, body, kContentType);
  if (!result) return {0, "", httplib::to_string(result.error())};
  return {result->status, result->body, ""};
}

std::string FormatTimestamp(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::UTCTimeZone());
}

// Field checks shared by debit, refund and payout; returns an error answer or null.
std::optional<Json> ValidateCommon(const Json& body, int64_t& amount_minor) {
  const std::string id = Text(body, "merchantTransactionId");
  if (id.empty() || id.size() > 50) {
    return ErrorAnswer(1002, "merchantTransactionId is required, at most 50 characters");
  }
  std::optional<int64_t> amount = ParseAmount(Text(body, "amount"));
  if (!amount.has_value() || *amount <= 0) {
    return ErrorAnswer(1002, "amount must be a positive decimal with at most 2 decimals");
  }
  amount_minor = *amount;
  if (Text(body, "currency") != "EUR") {
    return ErrorAnswer(1002, "currency must be EUR for Flik");
  }
  if (Text(body, "description").size() > 255) {
    return ErrorAnswer(1002, "description must be at most 255 characters");
  }
  if (Text(body, "merchantMetaData").size() > 255) {
    return ErrorAnswer(1002, "merchantMetaData must be at most 255 characters");
  }
  if (Text(body, "callbackUrl").empty()) {
    return ErrorAnswer(1002, "callbackUrl is required");
  }
  return std::nullopt;
}

std::string ExtraText(const Json& body, absl::string_view key) {
  auto it = body.find("extraData");
  return it == body.end() ? "" : Text(*it, key);
}

// extraData.enableWaitingScreen, which seed 000 gives as "Vrednost: yes/no"; JSON booleans mean the
// same. Leaves `value` empty when the field is absent or null; false when it is anything else.
bool ReadWaitingScreen(const Json& body, std::optional<bool>& value) {
  auto extra = body.find("extraData");
  if (extra == body.end() || !extra->is_object()) return true;
  auto field = extra->find("enableWaitingScreen");
  if (field == extra->end() || field->is_null()) return true;
  if (field->is_boolean()) {
    value = field->get<bool>();
    return true;
  }
  if (field->is_string() && (*field == "yes" || *field == "no")) {
    value = *field == "yes";
    return true;
  }
  return false;
}

}  // namespace

BankartSim::BankartSim(SimOptions options)
    : options_(std::move(options)),
      server_(std::make_unique<httplib::Server>()),
      executor_(std::make_unique<TimedExecutor>(4)) {
  // Fault injection parks request threads in sleeps; a larger pool keeps other calls moving.
  server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  server_->set_payload_max_length(1 << 20);
  // httplib writes a response's head and body in two send()s; without TCP_NODELAY (accepted
  // sockets inherit it from the listening one) Nagle holds the body until the head is acknowledged,
  // and a client's delayed ACK makes that about 40 ms per answer, which Bankart does not add.
  server_->set_tcp_nodelay(true);
  // httplib closes a keep-alive connection after 5 requests by default, so one API call in five
  // paid for a new TCP connection that Bankart's own front end does not make flikpay pay.
  server_->set_keep_alive_max_count(1000);
  RegisterRoutes();
}

BankartSim::~BankartSim() { Stop(); }

absl::Status BankartSim::Start() {
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
  } else if (server_->bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.host, ":", options_.port));
  }
  if (options_.public_url.empty()) {
    options_.public_url = absl::StrCat("http://", options_.host, ":", port_);
  }
  server_thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the listen loop runs; Start() returns once it does.
  while (!server_->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

void BankartSim::Stop() {
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  std::unique_ptr<TimedExecutor> executor;
  {
    absl::MutexLock lock(&mutex_);
    executor = std::move(executor_);
  }
  executor.reset();  // joins the callback workers, outside the lock they take
}

void BankartSim::RunLater(absl::Duration delay, std::function<void()> task) {
  if (executor_) executor_->RunAfter(delay, std::move(task));
}

void BankartSim::Wait() {
  if (server_thread_.joinable()) server_thread_.join();
}

absl::Duration BankartSim::Scaled(absl::Duration duration) const {
  return duration * options_.time_scale;
}

std::string BankartSim::NewId(size_t length) {
  static constexpr char kAlphabet[] = "0123456789abcdef";
  thread_local absl::BitGen bitgen;
  std::string id;
  for (size_t i = 0; i < length; ++i) {
    id.push_back(kAlphabet[absl::Uniform<size_t>(bitgen, 0, 16)]);
  }
  return id;
}

void BankartSim::RegisterRoutes() {
  server_->Post(
      R"(/api/v3/transaction/([^/]+)/(debit|refund|payout))",
      [this](const httplib::Request& q, httplib::Response& r) { HandleTransaction(q, r); });
  server_->Get(R"(/api/v3/status/([^/]+)/(getByUuid|getByMerchantTransactionId)/([^/]+))",
               [this](const httplib::Request& q, httplib::Response& r) { HandleStatus(q, r); });
  server_->Get(
      R"(/redirect/([0-9a-f]+)/([0-9a-f]+))",
      [this](const httplib::Request& q, httplib::Response& r) { HandleRedirectPage(q, r); });
  server_->Post(
      R"(/redirect/([0-9a-f]+)/([0-9a-f]+))",
      [this](const httplib::Request& q, httplib::Response& r) { HandleRedirectForm(q, r); });
  auto control = [this](const httplib::Request& q, httplib::Response& r) { HandleControl(q, r); };
  server_->Get(R"(/_sim/.*)", control);
  server_->Post(R"(/_sim/.*)", control);
  server_->Delete(R"(/_sim/.*)", control);
}

const SimConnector* BankartSim::Authenticate(const httplib::Request& request,
                                             const std::string& api_key,
                                             httplib::Response& response) {
  auto refuse = [&](int status, int code, absl::string_view message) -> const SimConnector* {
    response.status = status;
    response.set_content(ErrorAnswer(code, message).dump(), "application/json");
    return nullptr;
  };
  const std::string authorization = request.get_header_value("Authorization");
  const std::string expected_user = absl::StrCat(options_.api_user, ":");
  bool credentials_ok = false;
  if (absl::StartsWith(authorization, "Basic ")) {
    std::optional<std::string> decoded = Base64Decode(authorization.substr(6));
    if (decoded.has_value() && absl::StartsWith(*decoded, expected_user)) {
      const std::string password = decoded->substr(expected_user.size());
      // GATEWAY.md: the documents send the password as is, the public clients as SHA-1 x10.
      credentials_ok = ConstantTimeEquals(password, options_.api_password) ||
                       ConstantTimeEquals(password, Sha1HexRounds(options_.api_password, 10));
    }
  }
  if (!credentials_ok) return refuse(401, 1000, "Invalid API username or password");
  const SimConnector* connector = nullptr;
  for (const SimConnector& candidate : options_.connectors) {
    if (candidate.api_key == api_key) connector = &candidate;
  }
  if (connector == nullptr) return refuse(401, 1007, "Unknown API key");

  std::string date = request.get_header_value("X-Date");
  if (date.empty()) date = request.get_header_value("Date");
  std::optional<absl::Time> sent_at = ParseHttpDate(date);
  if (!sent_at.has_value() ||
      absl::AbsDuration(absl::Now() - *sent_at) > options_.request_date_tolerance) {
    return refuse(401, 1004, "Invalid Signature: Date header missing or out of tolerance");
  }
  // SignatureInput only views its strings, so the header values need to outlive it.
  const std::string content_type = request.get_header_value("Content-Type");
  const std::string signature = request.get_header_value("X-Signature");
  const SignatureInput signed_input{request.method, request.body, content_type, date,
                                    request.target};
  if (!SignatureMatches(connector->shared_secret, signed_input, signature)) {
    return refuse(401, 1004, "Invalid Signature");
  }
  return connector;
}

bool BankartSim::FaultScope::Matches(absl::string_view id) const {
  if (!merchant_transaction_id.empty()) return id == merchant_transaction_id;
  return absl::StartsWith(id, prefix);
}

std::optional<BankartSim::ApiFault> BankartSim::TakeFault(
    const std::string& operation, const std::string& merchant_transaction_id) {
  absl::MutexLock lock(&mutex_);
  for (auto it = api_faults_.begin(); it != api_faults_.end(); ++it) {
    if (!it->operation.empty() && it->operation != operation) continue;
    if (!it->scope.Matches(merchant_transaction_id)) continue;
    ApiFault fault = *it;
    if (--it->remaining <= 0) api_faults_.erase(it);
    return fault;
  }
  return std::nullopt;
}

class BankartSim::HandledTimer {
 public:
  explicit HandledTimer(BankartSim& sim) : sim_(sim), received_(absl::Now()) {}
  ~HandledTimer() {
    if (entry_.has_value()) sim_.JournalHandled(*entry_, absl::Now() - received_);
  }
  HandledTimer(const HandledTimer&) = delete;
  HandledTimer& operator=(const HandledTimer&) = delete;
  void Journaled(uint64_t entry) { entry_ = entry; }

 private:
  BankartSim& sim_;
  const absl::Time received_;
  std::optional<uint64_t> entry_;
};

void BankartSim::HandleTransaction(const httplib::Request& request, httplib::Response& response) {
  // httplib calls a handler once the request (headers and body) is read.
  HandledTimer timer(*this);
  const std::string api_key = request.matches[1];
  const std::string operation = request.matches[2];
  const SimConnector* connector = Authenticate(request, api_key, response);
  const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  const std::string merchant_transaction_id =
      body.is_object() ? Text(body, "merchantTransactionId") : "";
  std::optional<ApiFault> fault;
  if (connector != nullptr) fault = TakeFault(operation, merchant_transaction_id);
  const std::string fault_kind = fault ? fault->kind : "";

  if (fault_kind == "slow" || fault_kind == "timeout_before") absl::SleepFor(fault->delay);
  if (fault_kind == "timeout_before" || fault_kind == "error_before" ||
      fault_kind == "rate_limit") {
    const int status = fault_kind == "rate_limit" ? 429
                       : fault_kind == "error_before"
                           ? (fault->http_status ? fault->http_status : 503)
                           : 504;
    response.status = status;
    if (status == 429) {
      response.set_header("Retry-After", "1");
      response.set_content(ErrorAnswer(1009, "Too many requests").dump(), "application/json");
    } else {
      response.set_content("<html><body>Gateway error</body></html>", "text/html");
    }
    absl::MutexLock lock(&mutex_);
    timer.Journaled(RecordRequest(Json{{"operation", operation},
                                       {"connector", ConnectorKindName(connector->kind)},
                                       {"merchantTransactionId", merchant_transaction_id},
                                       {"requestId", request.get_header_value("X-Request-ID")},
                                       {"httpStatus", status},
                                       {"fault", fault_kind},
                                       {"created", false}}));
    return;
  }

  int http_status = 200;
  std::string created_uuid;
  Json answer;
  {
    absl::MutexLock lock(&mutex_);
    if (connector == nullptr) {
      timer.Journaled(RecordRequest(Json{{"operation", operation},
                                         {"requestId", request.get_header_value("X-Request-ID")},
                                         {"httpStatus", response.status},
                                         {"created", false},
                                         {"error", "authentication"}}));
      return;
    }
    if (body.is_discarded() || !body.is_object()) {
      http_status = 400;
      answer = ErrorAnswer(1005, "Request body is not a JSON object");
    } else if (operation == "debit") {
      answer = Debit(*connector, body, http_status, created_uuid);
    } else if (operation == "refund") {
      answer = Refund(*connector, body, http_status, created_uuid);
    } else {
      answer = Payout(*connector, body, http_status, created_uuid);
    }
    timer.Journaled(RecordRequest(Json{{"operation", operation},
                                       {"connector", ConnectorKindName(connector->kind)},
                                       {"merchantTransactionId", merchant_transaction_id},
                                       {"uuid", created_uuid},
                                       {"requestId", request.get_header_value("X-Request-ID")},
                                       {"httpStatus", http_status},
                                       {"errorCode", AnswerErrorCode(answer)},
                                       {"fault", fault_kind},
                                       {"created", !created_uuid.empty()}}));
  }
  if (fault_kind == "timeout_after") absl::SleepFor(fault->delay);
  if (fault_kind == "error_after") {
    response.status = fault->http_status ? fault->http_status : 504;
    response.set_content("<html><body>Gateway Timeout</body></html>", "text/html");
    return;
  }
  response.status = http_status;
  response.set_content(answer.dump(), "application/json");
}

BankartSim::Transaction& BankartSim::NewTransaction(const SimConnector& connector,
                                                    TransactionType type, const Json& body,
                                                    int64_t amount_minor) {
  Transaction transaction;
  transaction.uuid = NewId(20);
  transaction.purchase_id = absl::StrCat(
      absl::FormatTime("%Y%m%d", absl::Now(), absl::UTCTimeZone()), "-", transaction.uuid);
  transaction.adapter_reference_id = absl::StrCat("PGTASIM", absl::AsciiStrToUpper(NewId(25)));
  transaction.merchant_transaction_id = Text(body, "merchantTransactionId");
  transaction.connector = &connector;
  transaction.type = type;
  transaction.status = "PENDING";
  transaction.amount_minor = amount_minor;
  transaction.currency = Text(body, "currency");
  transaction.callback_url = Text(body, "callbackUrl");
  transaction.success_url = Text(body, "successUrl");
  transaction.error_url = Text(body, "errorUrl");
  transaction.cancel_url = Text(body, "cancelUrl");
  transaction.merchant_metadata = Text(body, "merchantMetaData");
  transaction.reference_uuid = Text(body, "referenceUuid");
  transaction.alias = ExtraText(body, "alias");
  by_merchant_id_[{connector.api_key, transaction.merchant_transaction_id}] = transaction.uuid;
  auto [it, inserted] = transactions_.emplace(transaction.uuid, std::move(transaction));
  return it->second;
}

std::string BankartSim::RedirectUrl(const Transaction& transaction) const {
  return absl::StrCat(options_.public_url, "/redirect/", transaction.uuid, "/",
                      transaction.redirect_token);
}

Json BankartSim::AcceptedAnswer(const Transaction& transaction) const {
  Json answer = {{"success", true},
                 {"uuid", transaction.uuid},
                 {"purchaseId", transaction.purchase_id},
                 {"returnType", transaction.redirect ? "REDIRECT" : "PENDING"},
                 {"paymentMethod", "FlikPayments"},
                 {"extraData",
                  {{"expiresDateTime", FormatTimestamp(transaction.expires_at)},
                   {"adapterReferenceId", transaction.adapter_reference_id}}}};
  if (transaction.redirect) answer["redirectUrl"] = RedirectUrl(transaction);
  return answer;
}

Json BankartSim::Debit(const SimConnector& connector, const Json& body, int& http_status,
                       std::string& created_uuid) {
  if (connector.kind == ConnectorKind::kPayout) {
    return DeclinedAnswer(1007, "Debit is not enabled on a payout connector");
  }
  int64_t amount_minor = 0;
  if (std::optional<Json> error = ValidateCommon(body, amount_minor)) {
    http_status = 400;
    return *error;
  }
  std::optional<bool> waiting_screen;
  if (!ReadWaitingScreen(body, waiting_screen)) {
    http_status = 400;
    return ErrorAnswer(1002, "extraData.enableWaitingScreen must be yes or no");
  }
  // Seed 000, "enableWaitingScreen": "Vrednost: yes/no določa način delovanja, s preusmeritvijo ali
  // brez. Preusmeritev kupca je privzeti način delovanja le pri e-commerce transakcijah." (yes/no
  // picks the flow with or without redirect; redirecting the payer is the default for E-commerce
  // only), and "Odgovor na API klic – brez preusmeritve": PENDING "je privzeti način delovanja
  // prodajnega mesta In-Person (inperson), Out-of-Band (oob)".
  const bool redirect = waiting_screen.value_or(connector.kind == ConnectorKind::kEcommerce);
  const std::string alias = ExtraText(body, "alias");
  if (!alias.empty()) {
    if (!IsNormalisedAlias(alias)) {
      http_status = 400;
      return ErrorAnswer(1002, "extraData.alias must be 00386XXXXXXXX or an e-mail address");
    }
  } else if (connector.kind != ConnectorKind::kEcommerce) {
    http_status = 400;
    return ErrorAnswer(1002, "extraData.alias is required on this connector");
  } else if (!redirect) {
    // Without an alias only the gateway's alias-entry page can find the payer, and that page is
    // what enableWaitingScreen "no" turns off.
    http_status = 400;
    return ErrorAnswer(1002, "extraData.alias is required when enableWaitingScreen is no");
  }
  if (const std::string purpose = ExtraText(body, "purposeCode");
      !purpose.empty() &&
      (purpose.size() != 4 || ExtraText(body, "referenceType") != "structured")) {
    http_status = 400;
    return ErrorAnswer(1002, "purposeCode must be 4 letters with referenceType structured");
  }
  if (by_merchant_id_.contains({connector.api_key, Text(body, "merchantTransactionId")})) {
    return DeclinedAnswer(3004, "Duplicate transaction id");
  }
  Transaction& transaction = NewTransaction(connector, TransactionType::kDebit, body, amount_minor);
  created_uuid = transaction.uuid;
  transaction.expires_at = absl::Now() + Scaled(RtpValidity(connector.kind));
  transaction.redirect = redirect;
  transaction.redirect_token = NewId(32);
  if (redirect) transaction.status = "REDIRECT";
  ScheduleExpiry(transaction.uuid, transaction.expires_at);
  if (alias.empty()) {
    // Seed 000: "Če alias ni posredovan v API klicu, se kupcu prikaže vnosna maska, kjer bo pozvan
    // k vnosu aliasa" (without an alias in the call the payer is shown a form to type it in).
    transaction.scenario = Scenario::kAwaitingAlias;
  } else {
    TakeAlias(transaction, alias);
  }
  return AcceptedAnswer(transaction);
}

void BankartSim::TakeAlias(Transaction& transaction, const std::string& alias) {
  transaction.alias = alias;
  transaction.scenario = ScenarioForAlias(alias);
  if (transaction.scenario == Scenario::kPayoutSuccess ||
      transaction.scenario == Scenario::kPayoutError) {
    transaction.scenario = Scenario::kUnknownAlias;  // payout aliases cannot pay
  }
  // The redirect aliases wait for a pick on the scenario page (or by the control API); every other
  // alias gets the request to pay in its app, which answers after the scenario delay.
  if (transaction.scenario != Scenario::kAwaitingChoice) ScheduleScenario(transaction);
}

Json BankartSim::Refund(const SimConnector& connector, const Json& body, int& http_status,
                        std::string& created_uuid) {
  int64_t amount_minor = 0;
  if (std::optional<Json> error = ValidateCommon(body, amount_minor)) {
    http_status = 400;
    return *error;
  }
  if (by_merchant_id_.contains({connector.api_key, Text(body, "merchantTransactionId")})) {
    return DeclinedAnswer(3004, "Duplicate transaction id");
  }
  auto original_it = transactions_.find(Text(body, "referenceUuid"));
  if (original_it == transactions_.end() ||
      original_it->second.connector->api_key != connector.api_key ||
      original_it->second.type != TransactionType::kDebit) {
    return DeclinedAnswer(8001, "Reference transaction not found");
  }
  Transaction& original = original_it->second;
  if (original.status != "SUCCESS") {
    return DeclinedAnswer(3002, "Refund is only allowed for a successful payment");
  }
  // Seed 000: "Vračilo na more biti višje od zneska, ki je bil plačan ob prvotnem nakupu" (a refund
  // cannot exceed what the original purchase paid).
  if (amount_minor > original.amount_minor - original.refund_reserved_minor) {
    return DeclinedAnswer(1002, "Refund exceeds the amount left of the original payment");
  }
  original.refund_reserved_minor += amount_minor;
  const Scenario original_scenario = original.scenario;
  Transaction& refund = NewTransaction(connector, TransactionType::kRefund, body, amount_minor);
  created_uuid = refund.uuid;
  refund.scenario =
      original_scenario == Scenario::kSuccessRefundError ? Scenario::kError : Scenario::kSuccess;
  refund.expires_at = absl::Now() + Scaled(absl::Minutes(5));
  ScheduleScenario(refund);
  return AcceptedAnswer(refund);
}

Json BankartSim::Payout(const SimConnector& connector, const Json& body, int& http_status,
                        std::string& created_uuid) {
  if (connector.kind != ConnectorKind::kPayout) {
    return DeclinedAnswer(1007, "Payout is only enabled on the payout connector");
  }
  int64_t amount_minor = 0;
  if (std::optional<Json> error = ValidateCommon(body, amount_minor)) {
    http_status = 400;
    return *error;
  }
  const std::string alias = ExtraText(body, "alias");
  if (!IsNormalisedAlias(alias)) {
    http_status = 400;
    return ErrorAnswer(1002, "extraData.alias must be 00386XXXXXXXX or an e-mail address");
  }
  if (by_merchant_id_.contains({connector.api_key, Text(body, "merchantTransactionId")})) {
    return DeclinedAnswer(3004, "Duplicate transaction id");
  }
  Transaction& payout = NewTransaction(connector, TransactionType::kPayout, body, amount_minor);
  created_uuid = payout.uuid;
  const Scenario scenario = ScenarioForAlias(alias);
  payout.scenario = scenario == Scenario::kPayoutSuccess ? Scenario::kSuccess
                    : scenario == Scenario::kPayoutError ? Scenario::kError
                                                         : Scenario::kUnknownAlias;
  payout.expires_at = absl::Now() + Scaled(absl::Minutes(5));
  ScheduleScenario(payout);
  return AcceptedAnswer(payout);
}

void BankartSim::ScheduleScenario(const Transaction& transaction) {
  const std::string uuid = transaction.uuid;
  const Scenario scenario = transaction.scenario;
  RunLater(Scaled(options_.scenario_delay), [this, uuid, scenario] { Finish(uuid, scenario); });
}

void BankartSim::ScheduleExpiry(const std::string& uuid, absl::Time when) {
  RunLater(when - absl::Now(), [this, uuid] { Expire(uuid); });
}

void BankartSim::Expire(const std::string& uuid) {
  absl::MutexLock lock(&mutex_);
  auto it = transactions_.find(uuid);
  if (it == transactions_.end()) return;
  Transaction& expiring = it->second;
  if (expiring.status != "PENDING" && expiring.status != "REDIRECT") return;
  if (expiring.connector->kind == ConnectorKind::kEcommerce && !expiring.requery_until) {
    // Seed 000, after the countdown screen: "V primeru, da kupec ne potrdi plačila oziroma Payment
    // Gateway ne prejme rezultata o statusu plačila, bo Payment Gateway po izteku veljavnosti
    // zahtevka ponovno poskušal pridobiti informacijo in po preteku vsaj 45 sekund ponovno poslal
    // poizvedbo. V tem času se kupcu osveži prikaz z novim odštevalnikom. To velja le v primeru
    // tipa transakcij e-commerce." (When the payer has not confirmed or no result came, the gateway
    // asks again after the request expired and waits at least 45 seconds, showing the payer a new
    // countdown; E-commerce only.) An answer that comes in this window still decides the payment.
    expiring.requery_until = absl::Now() + Scaled(options_.ecommerce_requery_window);
    ScheduleExpiry(expiring.uuid, *expiring.requery_until);
    return;
  }
  // Seed 000, expiresDateTime: after the validity the gateway "sporoči neuspelo transakcijo na
  // callbackUrl" (reports the failed transaction to the callbackUrl).
  expiring.errors = {
      Error{2005, "Transaction expired", "EXPIRED", "Request to pay was not confirmed in time"}};
  expiring.status = "ERROR";
  Dispatch(Delivery{expiring.uuid, expiring.merchant_transaction_id, expiring.callback_url,
                    CallbackBody(expiring).dump(), expiring.connector->shared_secret});
}

void BankartSim::Finish(const std::string& uuid, Scenario outcome) {
  absl::MutexLock lock(&mutex_);
  auto it = transactions_.find(uuid);
  if (it != transactions_.end()) FinishLocked(it->second, outcome);
}

void BankartSim::FinishLocked(Transaction& transaction, Scenario outcome) {
  if (transaction.status != "PENDING" && transaction.status != "REDIRECT") return;
  switch (outcome) {
    case Scenario::kSuccess:
    case Scenario::kSuccessRefundSuccess:
    case Scenario::kSuccessRefundError:
      transaction.status = "SUCCESS";
      break;
    case Scenario::kCancel:
      transaction.status = "CANCELLED";
      transaction.errors = {Error{2002, "Transaction cancelled by payer", "CANCELLED",
                                  "Payer rejected the request to pay"}};
      break;
    case Scenario::kUnknownAlias:
      transaction.status = "ERROR";
      // Seed 000, "Zavrnitev transakcije zaradi neobstoječega aliasa": message "Alias does not
      // exist", code 2007, adapterMessage "Did not exist", adapterCode 03.
      transaction.errors = {Error{2007, "Alias does not exist", "03", "Did not exist"}};
      break;
    case Scenario::kAwaitingAlias:
    case Scenario::kAwaitingChoice:
      return;
    default:
      transaction.status = "ERROR";
      transaction.errors = {Error{1003, "Transaction could not be processed", "96",
                                  "Technical error at the payer's bank"}};
      break;
  }
  if (transaction.type == TransactionType::kRefund && transaction.status != "SUCCESS") {
    // A failed refund gives its reservation back to the original payment.
    auto original = transactions_.find(transaction.reference_uuid);
    if (original != transactions_.end()) {
      original->second.refund_reserved_minor -= transaction.amount_minor;
    }
  }
  Dispatch(Delivery{transaction.uuid, transaction.merchant_transaction_id, transaction.callback_url,
                    CallbackBody(transaction).dump(), transaction.connector->shared_secret});
}

Json BankartSim::CallbackBody(const Transaction& transaction) const {
  // A callback carries what the status API answers, with the result in place of the status.
  Json body = TransactionJson(transaction);
  body.erase("transactionStatus");
  body["result"] = transaction.status == "SUCCESS" ? "OK" : "ERROR";
  if (!transaction.merchant_metadata.empty()) {
    body["merchantMetaData"] = transaction.merchant_metadata;
  }
  return body;
}

void BankartSim::Dispatch(Delivery delivery) {
  if (delivery.url.empty()) return;
  auto fault = std::find_if(callback_faults_.begin(), callback_faults_.end(),
                            [&](const CallbackFault& candidate) {
                              return candidate.scope.Matches(delivery.merchant_transaction_id);
                            });
  if (fault == callback_faults_.end()) {
    RunLater(absl::ZeroDuration(), [this, delivery] { Deliver(delivery, 1); });
    return;
  }
  if (fault->kind == "reorder") {
    // Held until the batch is complete, then sent newest first.
    fault->held.push_back(std::move(delivery));
    if (--fault->remaining > 0) return;
    std::vector<Delivery> batch(fault->held.rbegin(), fault->held.rend());
    callback_faults_.erase(fault);
    RunLater(absl::ZeroDuration(), [this, batch] {
      for (const Delivery& held : batch) Deliver(held, 1);
    });
    return;
  }
  const std::string kind = fault->kind;
  const int copies = fault->copies;
  const absl::Duration delay = fault->delay;
  if (--fault->remaining <= 0) callback_faults_.erase(fault);
  if (kind == "drop") {
    callback_journal_.push_back({{"uuid", delivery.uuid},
                                 {"merchantTransactionId", delivery.merchant_transaction_id},
                                 {"dropped", true},
                                 {"at", FormatTimestamp(absl::Now())}});
  } else if (kind == "duplicate") {
    for (int copy = 1; copy <= copies; ++copy) {
      Delivery duplicate = delivery;
      duplicate.copy = copy;
      RunLater(absl::ZeroDuration(), [this, duplicate] { Deliver(duplicate, 1); });
    }
  } else {  // delay
    RunLater(delay, [this, delivery] { Deliver(delivery, 1); });
  }
}

void BankartSim::Deliver(Delivery delivery, int attempt) {
  // Bankart's schedule after an unacknowledged callback: 1 min, 5 min, 15 min, 1 h, 2 h, 3 h, 12 h,
  // then daily for a week.
  static const absl::Duration kRetryDelays[] = {
      absl::Minutes(1), absl::Minutes(5), absl::Minutes(15), absl::Hours(1),  absl::Hours(2),
      absl::Hours(3),   absl::Hours(12),  absl::Hours(24),   absl::Hours(24), absl::Hours(24),
      absl::Hours(24),  absl::Hours(24),  absl::Hours(24),   absl::Hours(24)};
  const std::string date = FormatHttpDate(absl::Now(), options_.callback_date_format);
  const std::string request_uri = RequestUriOf(delivery.url);
  const httplib::Headers headers = {
      {"Date", date},
      {"X-Signature",
       Signature(delivery.shared_secret,
                 SignatureInput{"POST", delivery.body, kContentType, date, request_uri})},
  };
  const CallbackExchange exchange =
      PostCallback(delivery.url, request_uri, headers, delivery.body,
                   attempt == 1 ? options_.callback_timeout : options_.callback_retry_timeout);
  // Seed 001 and GATEWAY.md: acknowledged is HTTP 200 with the body "OK"; anything else is retried.
  const bool acknowledged =
      exchange.status == 200 && absl::StripAsciiWhitespace(exchange.body) == "OK";
  const bool retry = !acknowledged && attempt <= static_cast<int>(std::size(kRetryDelays));
  {
    absl::MutexLock lock(&mutex_);
    callback_journal_.push_back(
        {{"uuid", delivery.uuid},
         {"merchantTransactionId", delivery.merchant_transaction_id},
         {"attempt", attempt},
         {"copy", delivery.copy},
         {"httpStatus", exchange.status},
         {"transportError", exchange.transport_error},
         {"acknowledged", acknowledged},
         {"result", Text(Json::parse(delivery.body, nullptr, false), "result")},
         {"at", FormatTimestamp(absl::Now())},
         // When flikpay's answer was in: what a fault test compares flikpay's history with.
         {"answeredAtMicros", absl::ToUnixMicros(absl::Now())}});
    if (retry) {
      RunLater(Scaled(kRetryDelays[attempt - 1]),
               [this, delivery, attempt] { Deliver(delivery, attempt + 1); });
    }
  }
}

void BankartSim::HandleStatus(const httplib::Request& request, httplib::Response& response) {
  const std::string api_key = request.matches[1];
  const std::string lookup = request.matches[2];
  const std::string id = request.matches[3];
  HandledTimer timer(*this);
  const SimConnector* connector = Authenticate(request, api_key, response);
  if (connector == nullptr) return;
  std::string merchant_transaction_id = id;
  if (lookup == "getByUuid") {
    absl::MutexLock lock(&mutex_);
    auto it = transactions_.find(id);
    merchant_transaction_id = it == transactions_.end() ? "" : it->second.merchant_transaction_id;
  }
  std::optional<ApiFault> fault = TakeFault("status", merchant_transaction_id);
  if (fault && (fault->kind == "slow" || fault->kind == "timeout_before" ||
                fault->kind == "timeout_after")) {
    absl::SleepFor(fault->delay);
  }
  if (fault && fault->kind != "slow") {
    response.status = fault->kind == "rate_limit" ? 429
                      : fault->http_status        ? fault->http_status
                                                  : 503;
    if (response.status == 429) response.set_header("Retry-After", "1");
    response.set_content(ErrorAnswer(1009, "Too many requests").dump(), "application/json");
    absl::MutexLock lock(&mutex_);
    timer.Journaled(RecordRequest(Json{{"operation", "status"},
                                       {"lookup", id},
                                       {"requestId", request.get_header_value("X-Request-ID")},
                                       {"httpStatus", response.status},
                                       {"fault", fault->kind}}));
    return;
  }

  absl::MutexLock lock(&mutex_);
  // Bankart's limits: 60 status requests a minute per API user, 10 per transaction.
  const absl::Time now = absl::Now();
  const absl::Duration window = Scaled(absl::Minutes(1));
  auto prune = [&](std::deque<absl::Time>& calls) {
    while (!calls.empty() && calls.front() <= now - window) calls.pop_front();
  };
  prune(status_calls_);
  std::deque<absl::Time>& per_id = status_calls_by_id_[id];
  prune(per_id);
  if (status_calls_.size() >= 60 || per_id.size() >= 10) {
    response.status = 429;
    response.set_header("Retry-After",
                        std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(window))));
    response.set_content(ErrorAnswer(1009, "Too many requests").dump(), "application/json");
    timer.Journaled(RecordRequest(Json{{"operation", "status"},
                                       {"lookup", id},
                                       {"requestId", request.get_header_value("X-Request-ID")},
                                       {"httpStatus", 429}}));
    return;
  }
  status_calls_.push_back(now);
  per_id.push_back(now);

  const Transaction* found = nullptr;
  if (lookup == "getByUuid") {
    auto it = transactions_.find(id);
    if (it != transactions_.end() && it->second.connector->api_key == api_key) {
      found = &it->second;
    }
  } else if (auto it = by_merchant_id_.find({api_key, id}); it != by_merchant_id_.end()) {
    found = &transactions_.at(it->second);
  }
  timer.Journaled(RecordRequest(Json{{"operation", "status"},
                                     {"lookup", id},
                                     {"requestId", request.get_header_value("X-Request-ID")},
                                     {"httpStatus", 200},
                                     {"found", found != nullptr}}));
  Json answer;
  if (found == nullptr) {
    answer = {{"success", false},
              {"errors", Json::array({{{"message", "Transaction not found"}, {"code", "8001"}}})},
              {"errorCode", 8001},
              {"errorMessage", "Transaction not found"}};
  } else {
    answer = TransactionJson(*found);
    answer["success"] = true;
  }
  response.set_content(answer.dump(), "application/json");
}

Json BankartSim::TransactionJson(const Transaction& transaction) const {
  Json answer = {{"transactionStatus", transaction.status},
                 {"uuid", transaction.uuid},
                 {"merchantTransactionId", transaction.merchant_transaction_id},
                 {"purchaseId", transaction.purchase_id},
                 {"transactionType", TypeName(transaction.type)},
                 {"paymentMethod", "FlikPayments"},
                 {"amount", FormatAmount(transaction.amount_minor)},
                 {"currency", transaction.currency},
                 {"extraData", {{"adapterReferenceId", transaction.adapter_reference_id}}}};
  if (!transaction.reference_uuid.empty()) {
    answer["referenceUuid"] = transaction.reference_uuid;
  }
  if (!transaction.errors.empty()) {
    Json errors = Json::array();
    for (const Error& error : transaction.errors) {
      errors.push_back({{"message", error.message},
                        {"code", std::to_string(error.code)},
                        {"adapterMessage", error.adapter_message},
                        {"adapterCode", error.adapter_code}});
    }
    answer["errors"] = std::move(errors);
  }
  return answer;
}

std::string BankartSim::PageHtml(const Transaction& transaction, absl::string_view notice) const {
  const std::string action =
      absl::StrCat("/redirect/", transaction.uuid, "/", transaction.redirect_token);
  const bool waiting = transaction.scenario != Scenario::kAwaitingAlias &&
                       transaction.scenario != Scenario::kAwaitingChoice;
  // The waiting screen reloads itself, so the payer's browser learns of the answer and is sent on.
  std::string html = absl::StrCat(
      "<!DOCTYPE html><html lang=\"sl\"><head><meta charset=\"utf-8\">",
      waiting ? "<meta http-equiv=\"refresh\" content=\"2\">" : "",
      "<title>Flik – bankart-sim</title></head><body><h1>Flik plačilo (simulator)</h1><p>Znesek: ",
      FormatAmount(transaction.amount_minor), " ", HtmlEscape(transaction.currency),
      "</p><p>Transakcija: ", HtmlEscape(transaction.merchant_transaction_id),
      "</p><p>Status: ", transaction.status, "</p>");
  if (!notice.empty()) absl::StrAppend(&html, "<p class=\"error\">", HtmlEscape(notice), "</p>");
  if (transaction.scenario == Scenario::kAwaitingAlias) {
    absl::StrAppend(&html, "<form method=\"post\" action=\"", action,
                    "\"><label>Vnesite svoj Flik alias (telefonska številka ali e-mail): <input "
                    "name=\"alias\" autocomplete=\"tel email\"></label><button "
                    "type=\"submit\">Potrdi</button></form>");
  } else if (transaction.scenario == Scenario::kAwaitingChoice) {
    // Seed 000, "Testiranje plačil s simulatorjem": in the sandbox "se ta odštevalnik nadomesti s
    // stranjo z naborom testnih scenarijev" (the countdown is replaced by a page of test
    // scenarios).
    absl::StrAppend(&html, "<p>Izberite scenarij:</p>");
    for (const Choice& choice : kChoices) {
      absl::StrAppend(&html, "<form method=\"post\" action=\"", action,
                      "\"><input type=\"hidden\" name=\"scenario\" value=\"", choice.key,
                      "\"><button type=\"submit\">", choice.label, "</button></form>");
    }
  } else if (transaction.connector->kind == ConnectorKind::kEcommerce) {
    // Seed 000: the gateway "kupcu pokaže okno z odštevalnikom časa" (shows a countdown), renewed
    // for the re-query window after expiry.
    const absl::Time deadline = transaction.requery_until.value_or(transaction.expires_at);
    absl::StrAppend(
        &html, "<p>Potrdite plačilo v aplikaciji Flik. Preostali čas: <span id=\"countdown\">",
        std::max<int64_t>(0, absl::ToInt64Seconds(deadline - absl::Now())), "</span> s</p>");
  } else if (transaction.connector->kind == ConnectorKind::kOutOfBand) {
    // Seed 000: for in-person and oob no countdown is shown; for the latter "se prikaže le ekran,
    // kjer se vidi znesek plačila in do kdaj je zahtevek veljaven" (only the amount and until when
    // the request is valid).
    absl::StrAppend(&html, "<p>Zahtevek je veljaven do: ", FormatTimestamp(transaction.expires_at),
                    " UTC</p>");
  } else {
    absl::StrAppend(&html, "<p>Potrdite plačilo v aplikaciji Flik.</p>");
  }
  absl::StrAppend(&html, "</body></html>");
  return html;
}

namespace {

// Seed 000, after the countdown screen: "Ko kupec potrdi ali zavrne zahtevek za plačilo, bo
// preusmerjen nazaj na trgovčevo stran" with successUrl (confirmed and paid), cancelUrl (declined)
// and errorUrl (technical error, insufficient funds, ...).
void ReturnPayer(const std::string& status, const std::string& success_url,
                 const std::string& cancel_url, const std::string& error_url,
                 httplib::Response& response) {
  const std::string& target = status == "SUCCESS"     ? success_url
                              : status == "CANCELLED" ? cancel_url
                                                      : error_url;
  if (target.empty()) {
    response.set_content(absl::StrCat("Payment ", status), "text/plain");
  } else {
    response.set_redirect(target, 303);
  }
}

bool IsOpen(absl::string_view status) { return status == "PENDING" || status == "REDIRECT"; }

}  // namespace

void BankartSim::HandleRedirectPage(const httplib::Request& request, httplib::Response& response) {
  const std::string uuid = request.matches[1];
  const std::string token = request.matches[2];
  absl::MutexLock lock(&mutex_);
  auto it = transactions_.find(uuid);
  if (it == transactions_.end() || it->second.redirect_token != token) {
    response.status = 404;
    response.set_content("<html><body><p>Unknown payment.</p></body></html>", "text/html");
    return;
  }
  const Transaction& transaction = it->second;
  if (!IsOpen(transaction.status)) {
    ReturnPayer(transaction.status, transaction.success_url, transaction.cancel_url,
                transaction.error_url, response);
    return;
  }
  response.set_content(PageHtml(transaction, ""), "text/html; charset=utf-8");
}

void BankartSim::HandleRedirectForm(const httplib::Request& request, httplib::Response& response) {
  const std::string uuid = request.matches[1];
  const std::string token = request.matches[2];
  absl::MutexLock lock(&mutex_);
  auto it = transactions_.find(uuid);
  if (it == transactions_.end() || it->second.redirect_token != token) {
    response.status = 404;
    response.set_content("Unknown payment", "text/plain");
    return;
  }
  Transaction& transaction = it->second;
  if (request.has_param("alias")) {
    if (transaction.scenario != Scenario::kAwaitingAlias || !IsOpen(transaction.status)) {
      response.status = 409;
      response.set_content("This payment is no longer waiting for an alias", "text/plain");
      return;
    }
    // Seed 000: with Bankart's own entry form the merchant need not validate the alias ("V
    // primeru, da je v uporabi Bankartova vnosna maska, ta validacija ni potrebna"): the form does.
    std::optional<std::string> alias = NormaliseTypedAlias(request.get_param_value("alias"));
    if (!alias.has_value()) {
      response.status = 400;
      response.set_content(
          PageHtml(transaction,
                   "Neveljaven alias: vnesite telefonsko številko (npr. 041 123 456 ali +386 41 "
                   "123 456) ali e-mail naslov."),
          "text/html; charset=utf-8");
      return;
    }
    TakeAlias(transaction, *alias);
    // Post/redirect/get: the page now shows the scenarios or the waiting screen.
    response.set_redirect(RedirectUrl(transaction), 303);
    return;
  }
  std::optional<Scenario> scenario = ParseChoice(request.get_param_value("scenario"));
  if (!scenario.has_value()) {
    response.status = 400;
    response.set_content(
        "post alias, or scenario as one of success, cancel, error, success_refund_success, "
        "success_refund_error",
        "text/plain");
    return;
  }
  if (transaction.scenario != Scenario::kAwaitingChoice || !IsOpen(transaction.status)) {
    response.status = 409;
    response.set_content("This payment is no longer waiting for a choice", "text/plain");
    return;
  }
  transaction.scenario = *scenario;
  // Seed 000, "Rezultat plačila": the gateway makes its first callback attempt before it
  // redirects the payer ("pred preusmeritvijo kupca na trgovčevo stran").
  FinishLocked(transaction, *scenario);
  ReturnPayer(transaction.status, transaction.success_url, transaction.cancel_url,
              transaction.error_url, response);
}

uint64_t BankartSim::RecordRequest(Json entry) {
  entry["at"] = FormatTimestamp(absl::Now());
  request_journal_.push_back(std::move(entry));
  return request_journal_cleared_ + request_journal_.size() - 1;
}

void BankartSim::JournalHandled(uint64_t entry, absl::Duration handled) {
  absl::MutexLock lock(&mutex_);
  if (entry < request_journal_cleared_) return;
  const uint64_t index = entry - request_journal_cleared_;
  if (index >= request_journal_.size()) return;
  request_journal_[index]["handledMicros"] = absl::ToInt64Microseconds(handled);
}

void BankartSim::HandleControl(const httplib::Request& request, httplib::Response& response) {
  const std::string& path = request.path;
  auto reply = [&](int status, const Json& body) {
    response.status = status;
    response.set_content(body.dump(), "application/json");
  };
  if (path == "/_sim/health") {
    response.set_content("OK", "text/plain");
    return;
  }
  if (request.method == "GET" && path == "/_sim/journal") {
    absl::MutexLock lock(&mutex_);
    reply(200, Json{{"requests", request_journal_}, {"callbacks", callback_journal_}});
    return;
  }
  if (request.method == "GET" && path == "/_sim/transactions") {
    absl::MutexLock lock(&mutex_);
    Json list = Json::array();
    for (const auto& [uuid, transaction] : transactions_) {
      Json entry = TransactionJson(transaction);
      entry["connector"] = ConnectorKindName(transaction.connector->kind);
      entry["refundedOrPendingAmount"] = FormatAmount(transaction.refund_reserved_minor);
      list.push_back(std::move(entry));
    }
    reply(200, list);
    return;
  }
  if (request.method == "DELETE" && (path == "/_sim/faults" || path == "/_sim/journal")) {
    absl::MutexLock lock(&mutex_);
    if (path == "/_sim/faults") {
      api_faults_.clear();
      // Callbacks held for reordering go out now, in their original order.
      for (const CallbackFault& fault : callback_faults_) {
        for (const Delivery& held : fault.held) {
          RunLater(absl::ZeroDuration(), [this, held] { Deliver(held, 1); });
        }
      }
      callback_faults_.clear();
    } else {
      request_journal_cleared_ += request_journal_.size();
      request_journal_ = Json::array();
      callback_journal_ = Json::array();
    }
    reply(200, Json{{"ok", true}});
    return;
  }
  const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  auto field_int = [&](const char* key, int fallback) {
    return body.is_object() && body.contains(key) && body[key].is_number_integer()
               ? body[key].get<int>()
               : fallback;
  };
  auto field_text = [&](const char* key) { return Text(body, key); };
  // Fills `scope` from the optional merchant_transaction_id or merchant_transaction_id_prefix;
  // false (and a 400 sent) when they are not one non-empty string.
  auto field_scope = [&](FaultScope& scope) {
    auto text = [&](const char* key, std::string& out) {
      if (!body.is_object() || !body.contains(key)) return true;
      if (!body[key].is_string() || body[key].get<std::string>().empty()) {
        return false;
      }
      out = body[key].get<std::string>();
      return true;
    };
    if (text("merchant_transaction_id", scope.merchant_transaction_id) &&
        text("merchant_transaction_id_prefix", scope.prefix) &&
        (scope.merchant_transaction_id.empty() || scope.prefix.empty())) {
      return true;
    }
    reply(
        400,
        Json{{"error",
              "merchant_transaction_id or merchant_transaction_id_prefix: one non-empty string"}});
    return false;
  };
  if (request.method == "POST" && path == "/_sim/faults") {
    static const char* kKinds[] = {"timeout_before", "timeout_after", "error_before",
                                   "error_after",    "slow",          "rate_limit"};
    ApiFault fault;
    fault.kind = field_text("kind");
    fault.operation = field_text("operation");
    fault.remaining = field_int("count", 1);
    fault.delay = absl::Milliseconds(field_int("delay_ms", 2000));
    fault.http_status = field_int("http_status", 0);
    if (!field_scope(fault.scope)) return;
    if (std::none_of(std::begin(kKinds), std::end(kKinds),
                     [&](const char* kind) { return fault.kind == kind; }) ||
        fault.remaining <= 0) {
      reply(400, Json{{"error",
                       "kind must be timeout_before, timeout_after, error_before, error_after, "
                       "slow or rate_limit; count > 0"}});
      return;
    }
    absl::MutexLock lock(&mutex_);
    api_faults_.push_back(fault);
    reply(200, Json{{"ok", true}});
    return;
  }
  if (request.method == "POST" && path == "/_sim/callback-faults") {
    CallbackFault fault;
    fault.kind = field_text("kind");
    fault.remaining = field_int("count", 1);
    fault.copies = field_int("copies", 2);
    fault.delay = absl::Milliseconds(field_int("delay_ms", 1000));
    if (!field_scope(fault.scope)) return;
    if ((fault.kind != "drop" && fault.kind != "duplicate" && fault.kind != "delay" &&
         fault.kind != "reorder") ||
        fault.remaining <= 0 || fault.copies <= 0) {
      reply(400, Json{{"error", "kind must be drop, duplicate, delay or reorder; count > 0"}});
      return;
    }
    absl::MutexLock lock(&mutex_);
    callback_faults_.push_back(fault);
    reply(200, Json{{"ok", true}});
    return;
  }
  if (request.method == "POST" && absl::StartsWith(path, "/_sim/transactions/") &&
      absl::EndsWith(path, "/portal-refund")) {
    // Seed 000: a refund can also be made in Bankart's portal ("Refund with Postback"): the
    // merchant learns of it only from the refund's callback, under an id it never issued.
    // /_sim/transactions/{debit uuid}/portal-refund {"amount": "1.00"}.
    const std::string uuid(path.substr(19, path.size() - 19 - 14));
    absl::MutexLock lock(&mutex_);
    auto it = transactions_.find(uuid);
    if (it == transactions_.end()) {
      reply(404, Json{{"error", "unknown uuid"}});
      return;
    }
    const Json refund_body = {{"merchantTransactionId", absl::StrCat("portal-", NewId(12))},
                              {"referenceUuid", uuid},
                              {"amount", field_text("amount")},
                              {"currency", "EUR"},
                              {"callbackUrl", it->second.callback_url},
                              {"description", "Refund made in the portal"}};
    int http_status = 200;
    std::string created_uuid;
    const Json answer = Refund(*it->second.connector, refund_body, http_status, created_uuid);
    RecordRequest(Json{{"operation", "portal-refund"},
                       {"merchantTransactionId", Text(refund_body, "merchantTransactionId")},
                       {"uuid", created_uuid},
                       {"httpStatus", http_status},
                       {"created", !created_uuid.empty()}});
    reply(created_uuid.empty() ? 409 : 200,
          Json{{"answer", answer},
               {"merchantTransactionId", Text(refund_body, "merchantTransactionId")},
               {"uuid", created_uuid}});
    return;
  }
  if (request.method == "POST" && absl::StartsWith(path, "/_sim/transactions/") &&
      absl::EndsWith(path, "/choose")) {
    // The redirect page's choice without a browser:
    // /_sim/transactions/{uuid}/choose.
    const std::string uuid(path.substr(19, path.size() - 19 - 7));
    std::optional<Scenario> scenario = ParseChoice(field_text("scenario"));
    absl::MutexLock lock(&mutex_);
    auto it = transactions_.find(uuid);
    if (it == transactions_.end()) {
      reply(404, Json{{"error", "unknown uuid"}});
      return;
    }
    // A test may also pick for a payer who has not typed an alias yet: it stands for both pages.
    if (!scenario.has_value() || !IsOpen(it->second.status) ||
        (it->second.scenario != Scenario::kAwaitingChoice &&
         it->second.scenario != Scenario::kAwaitingAlias)) {
      reply(409, Json{{"error", "not waiting for a choice, or unknown scenario"}});
      return;
    }
    it->second.scenario = *scenario;
    FinishLocked(it->second, *scenario);
    reply(200, TransactionJson(it->second));
    return;
  }
  reply(404, Json{{"error", "unknown control endpoint"}});
}

}  // namespace flikpay::sim
