// bankart-sim's payer flows and dates as seed 000 and seed 001 describe them, driven over raw HTTP
// the way a merchant and a payer's browser would: the alias-entry page, the scenario page, the
// waiting screen that returns the payer, the enableWaitingScreen default, the E-commerce re-query
// window, requests dated in every RFC 7231 form, and callbacks dated in each selectable form
// (checked by the stand-in's pinned code and by flikpay's adapter).
#include <httplib.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gateway/bankart_gateway.h"
#include "gateway/sim/sim_protocol.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/callback_receiver.h"
#include "tests/support/process.h"
#include "tests/support/sim_suite.h"

namespace flikpay::sim {
namespace {

using Json = nlohmann::json;
using ::flikpay::testing::CallbackReceiver;
using ::flikpay::testing::ChildProcess;

constexpr char kUser[] = "flikpay-sim";
constexpr char kPassword[] = "flikpay-sim-password";
constexpr char kContentType[] = "application/json; charset=utf-8";

struct Key {
  const char* api_key;
  const char* secret;
};
constexpr Key kEcommerce{"sim-ecommerce-key", "sim-ecommerce-secret"};
constexpr Key kInPerson{"sim-in-person-key", "sim-in-person-secret"};
constexpr Key kOutOfBand{"sim-out-of-band-key", "sim-out-of-band-secret"};

// Scaled by 0.01: scenario answers after 50 ms, E-commerce requests expire after 3 s, In-Person
// after 0.9 s, and the E-commerce re-query window (300 s here, so its edges are far apart in test
// time) lasts 3 s more.
std::vector<std::string> SimArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {BANKART_SIM_PATH,        "--listen=127.0.0.1:0",
                                   "--time_scale=0.01",     "--scenario_delay=5s",
                                   "--callback_timeout=2s", "--ecommerce_requery_window=300s"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

struct Answer {
  int status = 0;
  Json body;
  std::string text;
  std::string location;
};

Answer ToAnswer(const httplib::Result& result) {
  Answer answer;
  if (!result) return answer;
  answer.status = result->status;
  answer.text = result->body;
  answer.body = Json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  answer.location = result->get_header_value("Location");
  return answer;
}

struct FlowsSimFlags {
  static std::vector<std::string> Flags() {
    std::vector<std::string> args = SimArgs();
    return {args.begin() + 2, args.end()};  // after the binary and --listen
  }
};

class SimFlowsTest : public ::flikpay::testing::SimSuite<FlowsSimFlags> {
 protected:
  static std::string NewId(absl::string_view prefix) {
    static std::atomic<int> counter{0};
    return absl::StrCat(prefix, "-", absl::ToUnixMillis(absl::Now()), "-", counter++);
  }

  // A signed API call, as a merchant sends it (GATEWAY.md, "Requests").
  static Answer Call(int port, const std::string& method, const std::string& path,
                     const std::string& body, const Key& key, const std::string& date = "") {
    const std::string sent_date = date.empty() ? FormatHttpDate(absl::Now()) : date;
    httplib::Client client("127.0.0.1", port);
    const httplib::Headers headers = {
        {"Authorization", "Basic " + Base64Encode(absl::StrCat(kUser, ":", kPassword))},
        {"Date", sent_date},
        {"X-Signature", Signature(key.secret, {method, body, kContentType, sent_date, path})}};
    if (method == "GET") {
      httplib::Headers with_type = headers;
      with_type.emplace("Content-Type", kContentType);
      return ToAnswer(client.Get(path.c_str(), with_type));
    }
    return ToAnswer(client.Post(path.c_str(), headers, body, kContentType));
  }
  static Answer Call(const std::string& method, const std::string& path, const std::string& body,
                     const Key& key, const std::string& date = "") {
    return Call(port_, method, path, body, key, date);
  }

  static Answer Debit(const Key& key, const Json& body, int port = port_) {
    return Call(port, "POST", absl::StrCat("/api/v3/transaction/", key.api_key, "/debit"),
                body.dump(), key);
  }
  static Answer Status(const Key& key, const std::string& uuid) {
    return Call("GET", absl::StrCat("/api/v3/status/", key.api_key, "/getByUuid/", uuid), "", key);
  }

  // Seed 000's sample debit with this test's ids and URLs.
  Json DebitBody(const std::string& id, const std::string& alias,
                 const Json& waiting_screen = nullptr) {
    Json body = {{"merchantTransactionId", id},
                 {"amount", "11.11"},
                 {"currency", "EUR"},
                 {"successUrl", "https://shop.example/success?order=" + id},
                 {"errorUrl", "https://shop.example/error?order=" + id},
                 {"cancelUrl", "https://shop.example/cancel?order=" + id},
                 {"callbackUrl", receiver_.Url("connector=sim")},
                 {"description", "sporočilo kupcu"},
                 {"extraData", Json::object()},
                 {"customer", {{"ipAddress", "46.123.232.123"}}},
                 {"language", "sl"}};
    if (!alias.empty()) body["extraData"]["alias"] = alias;
    if (!waiting_screen.is_null()) body["extraData"]["enableWaitingScreen"] = waiting_screen;
    return body;
  }

  // The payer's browser: GET a page of the stand-in, not following redirects.
  static Answer Browse(const std::string& url) {
    httplib::Client client("127.0.0.1", port_);
    return ToAnswer(client.Get(RequestUriOf(url).c_str()));
  }
  static Answer Submit(const std::string& url, const httplib::Params& form) {
    httplib::Client client("127.0.0.1", port_);
    return ToAnswer(client.Post(RequestUriOf(url).c_str(), form));
  }
  static Answer Control(const std::string& path, const Json& body) {
    httplib::Client client("127.0.0.1", port_);
    return ToAnswer(client.Post(path.c_str(), body.dump(), "application/json"));
  }

  CallbackReceiver receiver_;
};

std::string ErrorCodeOf(const Json& status_answer) {
  return status_answer.contains("errors") ? status_answer["errors"][0].value("code", "") : "";
}

TEST_F(SimFlowsTest, WithoutAnAliasThePayerTypesOneThenPicksAScenario) {
  const std::string id = NewId("alias-page");
  Answer created = Debit(kEcommerce, DebitBody(id, ""));
  ASSERT_EQ(created.status, 200) << created.text;
  ASSERT_EQ(created.body["returnType"], "REDIRECT");
  const std::string page = created.body["redirectUrl"];
  const std::string uuid = created.body["uuid"];

  // Seed 000: the payer is first shown a form to type their alias in.
  Answer form = Browse(page);
  ASSERT_EQ(form.status, 200);
  EXPECT_TRUE(absl::StrContains(form.text, "name=\"alias\"")) << form.text;
  EXPECT_FALSE(absl::StrContains(form.text, "value=\"success\"")) << form.text;
  EXPECT_EQ(Status(kEcommerce, uuid).body["transactionStatus"], "REDIRECT");
  // A scenario cannot be picked before the alias is known.
  EXPECT_EQ(Submit(page, {{"scenario", "success"}}).status, 409);

  // The form checks the seed's format and asks again.
  Answer typo = Submit(page, {{"alias", "070 999 99"}});
  EXPECT_EQ(typo.status, 400);
  EXPECT_TRUE(absl::StrContains(typo.text, "name=\"alias\"")) << typo.text;

  // The redirect test alias, typed as a payer might; the form normalises it.
  Answer typed = Submit(page, {{"alias", "+386 70 999 999"}});
  ASSERT_EQ(typed.status, 303) << typed.text;
  EXPECT_EQ(typed.location, page);
  Answer scenarios = Browse(page);
  ASSERT_EQ(scenarios.status, 200);
  for (const char* choice : {"\"success\"", "\"cancel\"", "\"error\"", "\"success_refund_success\"",
                             "\"success_refund_error\""}) {
    EXPECT_TRUE(absl::StrContains(scenarios.text, choice)) << choice;
  }
  EXPECT_EQ(Submit(page, {{"alias", "0038670999000"}}).status, 409);  // typed already

  Answer picked = Submit(page, {{"scenario", "success"}});
  EXPECT_EQ(picked.status, 303);
  EXPECT_EQ(picked.location, "https://shop.example/success?order=" + id);
  std::optional<gateway::InboundCallback> callback = receiver_.WaitFor(id);
  ASSERT_TRUE(callback.has_value());
  EXPECT_EQ(Json::parse(callback->body)["result"], "OK");
  EXPECT_EQ(Status(kEcommerce, uuid).body["transactionStatus"], "SUCCESS");
  // Back on the page later, the payer is sent to the merchant again.
  EXPECT_EQ(Browse(page).location, "https://shop.example/success?order=" + id);
}

TEST_F(SimFlowsTest, TheWaitingScreenReturnsThePayerToTheUrlOfTheOutcome) {
  struct Case {
    const char* typed;  // what the payer types on the alias page
    const char* outcome_url;
    const char* error_code;
  };
  const Case cases[] = {
      {"success.debit@bankart.flik", "success", ""},
      {"070 999 111", "cancel", "2002"},        // cancel.debit, typed as a local number
      {"(00386) 70-999-222", "error", "1003"},  // error.debit
      {"nobody@example.si", "error", "2007"},   // not a Flik user
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.typed);
    const std::string id = NewId("waiting");
    Answer created = Debit(kEcommerce, DebitBody(id, ""));
    ASSERT_EQ(created.status, 200) << created.text;
    const std::string page = created.body["redirectUrl"];
    ASSERT_EQ(Submit(page, {{"alias", c.typed}}).status, 303);
    ASSERT_TRUE(receiver_.WaitFor(id).has_value());
    const Answer status = Status(kEcommerce, created.body["uuid"]);
    EXPECT_EQ(ErrorCodeOf(status.body), c.error_code) << status.text;
    Answer back = Browse(page);
    EXPECT_EQ(back.status, 303);
    EXPECT_EQ(back.location, absl::StrCat("https://shop.example/", c.outcome_url, "?order=", id));
  }
}

TEST_F(SimFlowsTest, TheWaitingScreenIsTheEcommerceDefaultAndCanBeTurnedOff) {
  struct Case {
    const Key* key;
    Json waiting_screen;
    const char* return_type;
  };
  const Case cases[] = {
      {&kEcommerce, nullptr, "REDIRECT"}, {&kEcommerce, "yes", "REDIRECT"},
      {&kEcommerce, "no", "PENDING"},     {&kEcommerce, false, "PENDING"},
      {&kEcommerce, true, "REDIRECT"},    {&kInPerson, nullptr, "PENDING"},
      {&kInPerson, "yes", "REDIRECT"},    {&kOutOfBand, nullptr, "PENDING"},
      {&kOutOfBand, "yes", "REDIRECT"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.key->api_key, " ", c.waiting_screen.dump()));
    const std::string id = NewId("screen");
    Answer created = Debit(*c.key, DebitBody(id, "success.debit@bankart.flik", c.waiting_screen));
    ASSERT_EQ(created.status, 200) << created.text;
    EXPECT_EQ(created.body["returnType"], c.return_type);
    EXPECT_EQ(created.body.contains("redirectUrl"), std::string(c.return_type) == "REDIRECT");
    if (created.body.contains("redirectUrl")) {
      Answer screen = Browse(created.body["redirectUrl"]);
      ASSERT_EQ(screen.status, 200);
      // Seed 000: a countdown for E-commerce; for Out-of-Band the amount and the validity only.
      EXPECT_EQ(absl::StrContains(screen.text, "countdown"), c.key == &kEcommerce) << screen.text;
      EXPECT_EQ(absl::StrContains(screen.text, "veljaven do"), c.key == &kOutOfBand) << screen.text;
    }
    std::optional<gateway::InboundCallback> callback = receiver_.WaitFor(id);
    ASSERT_TRUE(callback.has_value());
    EXPECT_EQ(Json::parse(callback->body)["result"], "OK");
  }
  Answer unclear = Debit(kEcommerce, DebitBody(NewId("screen"), "0038670999000", "maybe"));
  EXPECT_EQ(unclear.status, 400);
  EXPECT_EQ(unclear.body.value("errorCode", 0), 1002);
  // Without the waiting screen nobody could ask the payer for the alias.
  Answer nobody = Debit(kEcommerce, DebitBody(NewId("screen"), "", "no"));
  EXPECT_EQ(nobody.status, 400);
  EXPECT_EQ(nobody.body.value("errorCode", 0), 1002);
}

TEST_F(SimFlowsTest, AnExpiredEcommerceRequestIsAskedAboutAgainBeforeItFails) {
  const absl::Time sent = absl::Now();
  const std::string waiting_id = NewId("requery");
  const std::string in_person_id = NewId("requery");
  const std::string silent_id = NewId("requery");
  Answer waiting = Debit(kEcommerce, DebitBody(waiting_id, "redirect@bankart.flik"));
  Answer in_person = Debit(kInPerson, DebitBody(in_person_id, "0038670999999"));
  Answer silent = Debit(kEcommerce, DebitBody(silent_id, ""));
  ASSERT_EQ(waiting.status, 200) << waiting.text;
  ASSERT_EQ(in_person.status, 200) << in_person.text;
  ASSERT_EQ(silent.status, 200) << silent.text;

  // 4.5 s: both E-commerce requests expired at 3 s and are in their re-query window (to 6 s); the
  // In-Person one expired at 0.9 s for good.
  absl::SleepFor(sent + absl::Milliseconds(4500) - absl::Now());
  EXPECT_EQ(Status(kEcommerce, waiting.body["uuid"]).body["transactionStatus"], "REDIRECT");
  EXPECT_EQ(receiver_.CountFor(silent_id), 0);
  // The sandbox's scenario page stands in for the countdown (seed 000), and still takes a pick.
  Answer screen = Browse(waiting.body["redirectUrl"]);
  EXPECT_TRUE(absl::StrContains(screen.text, "value=\"success\"")) << screen.text;
  const Answer expired = Status(kInPerson, in_person.body["uuid"]);
  EXPECT_EQ(expired.body["transactionStatus"], "ERROR");
  EXPECT_EQ(ErrorCodeOf(expired.body), "2005");
  EXPECT_EQ(Control(absl::StrCat("/_sim/transactions/", in_person.body["uuid"].get<std::string>(),
                                 "/choose"),
                    {{"scenario", "success"}})
                .status,
            409);

  // An answer in the window still decides the payment.
  Answer chosen = Control(
      absl::StrCat("/_sim/transactions/", waiting.body["uuid"].get<std::string>(), "/choose"),
      {{"scenario", "success"}});
  EXPECT_EQ(chosen.status, 200) << chosen.text;
  std::optional<gateway::InboundCallback> paid = receiver_.WaitFor(waiting_id);
  ASSERT_TRUE(paid.has_value());
  EXPECT_EQ(Json::parse(paid->body)["result"], "OK");

  // Nobody answers the other: it fails when the window closes, not when the request expired.
  std::optional<gateway::InboundCallback> failed = receiver_.WaitFor(silent_id);
  ASSERT_TRUE(failed.has_value());
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(5500));
  const Json body = Json::parse(failed->body);
  EXPECT_EQ(body["result"], "ERROR");
  EXPECT_EQ(body["errors"][0]["code"], "2005");
}

// The payer's app answers after the request expired (scenario delay 4 s, validity 3 s): the
// waiting screen shows a new countdown to the end of the window, and the late answer counts.
TEST_F(SimFlowsTest, ALateAnswerInTheRequeryWindowDecidesThePayment) {
  std::string line;
  absl::StatusOr<std::unique_ptr<ChildProcess>> late_sim =
      ChildProcess::Start(SimArgs({"--scenario_delay=400s"}), "listening on", &line);
  ASSERT_TRUE(late_sim.ok()) << late_sim.status();
  const int port = ::flikpay::testing::PortFromLine(line);
  const absl::Time sent = absl::Now();
  const std::string id = NewId("late");
  Answer created = Debit(kEcommerce, DebitBody(id, "success.debit@bankart.flik"), port);
  ASSERT_EQ(created.status, 200) << created.text;
  ASSERT_EQ(created.body["returnType"], "REDIRECT");

  absl::SleepFor(sent + absl::Milliseconds(3500) - absl::Now());
  httplib::Client browser("127.0.0.1", port);
  Answer screen = ToAnswer(browser.Get(RequestUriOf(created.body["redirectUrl"]).c_str()));
  ASSERT_EQ(screen.status, 200);
  const std::string marker = "id=\"countdown\">";
  const size_t at = screen.text.find(marker);
  ASSERT_NE(at, std::string::npos) << screen.text;
  // The first countdown ran out at 3 s; the new one runs to 6 s.
  const int left = std::atoi(screen.text.c_str() + at + marker.size());
  EXPECT_GE(left, 1) << screen.text;
  EXPECT_LE(left, 3) << screen.text;

  std::optional<gateway::InboundCallback> callback = receiver_.WaitFor(id);
  ASSERT_TRUE(callback.has_value());
  EXPECT_EQ(Json::parse(callback->body)["result"], "OK");
  EXPECT_LT(absl::Now() - sent, absl::Seconds(6));
  (*late_sim)->Stop();
}

TEST_F(SimFlowsTest, RequestsDatedInEveryRfc7231FormAreAccepted) {
  const absl::Time now = absl::Now();
  const absl::TimeZone utc = absl::UTCTimeZone();
  const std::vector<std::string> accepted = {
      FormatHttpDate(now, DateForm::kGmt),
      FormatHttpDate(now, DateForm::kUtc),
      FormatHttpDate(now, DateForm::kNumeric),
      absl::FormatTime("%a, %d %b %Y %H:%M:%S +0200", now, absl::FixedTimeZone(2 * 3600)),
      absl::FormatTime("%A, %d-%b-%y %H:%M:%S GMT", now, utc),
      absl::FormatTime("%a %b %e %H:%M:%S %Y", now, utc),
  };
  for (const std::string& date : accepted) {
    Answer answer =
        Call("GET", "/api/v3/status/sim-in-person-key/getByMerchantTransactionId/" + NewId("dated"),
             "", kInPerson, date);
    EXPECT_EQ(answer.status, 200) << date << ": " << answer.text;
  }
  std::string wrong_weekday = FormatHttpDate(now);
  wrong_weekday.replace(0, 3, wrong_weekday.substr(0, 3) == "Mon" ? "Tue" : "Mon");
  const std::vector<std::string> refused = {
      wrong_weekday,
      FormatHttpDate(now - absl::Minutes(10)),
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, utc),
      "",
  };
  for (const std::string& date : refused) {
    Answer answer =
        Call("GET", "/api/v3/status/sim-in-person-key/getByMerchantTransactionId/" + NewId("dated"),
             "", kInPerson, date.empty() ? " " : date);
    EXPECT_EQ(answer.status, 401) << date;
    EXPECT_EQ(answer.body.value("errorCode", 0), 1004) << date;
  }
}

// Each selectable Date form end to end: the stand-in signs the callback over the Date it sends, and
// both its own pinned code and flikpay's adapter verify it.
TEST_F(SimFlowsTest, CallbacksCarryTheSelectedDateFormAndVerify) {
  struct Form {
    const char* flag;
    const char* zone_suffix;
  };
  for (const Form& form : {Form{"gmt", " GMT"}, Form{"utc", " UTC"}, Form{"numeric", " +0000"}}) {
    SCOPED_TRACE(form.flag);
    std::string line;
    absl::StatusOr<std::unique_ptr<ChildProcess>> sim = ChildProcess::Start(
        SimArgs({absl::StrCat("--callback_date_format=", form.flag)}), "listening on", &line);
    ASSERT_TRUE(sim.ok()) << sim.status();
    const int port = ::flikpay::testing::PortFromLine(line);
    const std::string id = NewId(form.flag);
    Json body = DebitBody(id, "success.debit@bankart.flik");
    body["callbackUrl"] = receiver_.Url("connector=in_person");
    ASSERT_EQ(Debit(kInPerson, body, port).status, 200);
    std::optional<gateway::InboundCallback> callback = receiver_.WaitFor(id);
    ASSERT_TRUE(callback.has_value());

    const std::string date = callback->headers["date"];
    EXPECT_TRUE(absl::EndsWith(date, form.zone_suffix)) << date;
    std::optional<absl::Time> dated = ParseHttpDate(date);
    ASSERT_TRUE(dated.has_value()) << date;
    EXPECT_LT(absl::AbsDuration(absl::Now() - *dated), absl::Seconds(60));
    EXPECT_TRUE(SignatureMatches(kInPerson.secret,
                                 {callback->method, callback->body,
                                  callback->headers["content-type"], date, callback->request_uri},
                                 callback->headers["x-signature"]));

    gateway::BankartConfig config;
    config.base_url = absl::StrCat("http://127.0.0.1:", port, "/api/v3");
    config.api_user = kUser;
    config.api_password = kPassword;
    config.connectors = {{gateway::Connector::kInPerson, {kInPerson.api_key, kInPerson.secret}}};
    absl::StatusOr<gateway::CallbackEvent> event =
        gateway::BankartGateway(config).VerifyCallback(*callback);
    EXPECT_TRUE(event.ok()) << date << ": " << event.status();
    (*sim)->Stop();
  }
}

// The request journal says which request id each API request carried and how long the stand-in
// spent on it (from the request read to the response handed over), so a benchmark can take the
// gateway's share out of a call's latency (bench/create_latency.cc).
TEST_F(SimFlowsTest, TheJournalKeepsEachRequestsIdAndHandlingTime) {
  auto signed_post = [](const std::string& path, const std::string& body, const Key& key,
                        const std::string& request_id) {
    const std::string date = FormatHttpDate(absl::Now());
    httplib::Client client("127.0.0.1", port_);
    const httplib::Headers headers = {
        {"Authorization", "Basic " + Base64Encode(absl::StrCat(kUser, ":", kPassword))},
        {"Date", date},
        {"X-Request-ID", request_id},
        {"X-Signature", Signature(key.secret, {"POST", body, kContentType, date, path})}};
    return ToAnswer(client.Post(path.c_str(), headers, body, kContentType));
  };
  auto journal_entry = [](const std::string& request_id) -> std::optional<Json> {
    httplib::Client client("127.0.0.1", port_);
    Answer journal = ToAnswer(client.Get("/_sim/journal"));
    if (journal.status != 200 || !journal.body.contains("requests")) return std::nullopt;
    for (const Json& entry : journal.body["requests"]) {
      if (entry.value("requestId", "") == request_id) return entry;
    }
    return std::nullopt;
  };
  const std::string debit_path = absl::StrCat("/api/v3/transaction/", kInPerson.api_key, "/debit");

  // An answer at once.
  const std::string quick = NewId("journal-quick");
  ASSERT_EQ(
      signed_post(debit_path, DebitBody(quick, "0038670999000").dump(), kInPerson, "rid-" + quick)
          .status,
      200);
  std::optional<Json> entry = journal_entry("rid-" + quick);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->value("operation", ""), "debit");
  EXPECT_EQ(entry->value("merchantTransactionId", ""), quick);
  ASSERT_TRUE(entry->contains("handledMicros")) << entry->dump();
  ASSERT_TRUE((*entry)["handledMicros"].is_number_integer()) << entry->dump();
  EXPECT_GE((*entry)["handledMicros"].get<int64_t>(), 0);
  EXPECT_LT((*entry)["handledMicros"].get<int64_t>(), 2'000'000);

  // A slow answer (a fault holding the request 300 ms) counts the wait, as Bankart's time.
  const std::string slow = NewId("journal-slow");
  ASSERT_EQ(Control("/_sim/faults", {{"kind", "slow"},
                                     {"operation", "debit"},
                                     {"merchant_transaction_id", slow},
                                     {"delay_ms", 300}})
                .status,
            200);
  const absl::Time sent = absl::Now();
  ASSERT_EQ(
      signed_post(debit_path, DebitBody(slow, "0038670999000").dump(), kInPerson, "rid-" + slow)
          .status,
      200);
  const absl::Duration round_trip = absl::Now() - sent;
  entry = journal_entry("rid-" + slow);
  ASSERT_TRUE(entry.has_value());
  ASSERT_TRUE(entry->contains("handledMicros")) << entry->dump();
  const int64_t handled = (*entry)["handledMicros"].get<int64_t>();
  EXPECT_GE(handled, 300'000);
  EXPECT_LE(handled, absl::ToInt64Microseconds(round_trip));

  // A refused request (a duplicate id) is timed too.
  ASSERT_EQ(signed_post(debit_path, DebitBody(quick, "0038670999000").dump(), kInPerson,
                        "rid-dup-" + quick)
                .status,
            200);
  entry = journal_entry("rid-dup-" + quick);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->value("errorCode", 0), 3004);
  EXPECT_TRUE(entry->contains("handledMicros")) << entry->dump();

  // After the journal is cleared, new entries are still stamped (and only their own).
  httplib::Client client("127.0.0.1", port_);
  ASSERT_EQ(ToAnswer(client.Delete("/_sim/journal")).status, 200);
  const std::string after = NewId("journal-after");
  ASSERT_EQ(
      signed_post(debit_path, DebitBody(after, "0038670999000").dump(), kInPerson, "rid-" + after)
          .status,
      200);
  entry = journal_entry("rid-" + after);
  ASSERT_TRUE(entry.has_value());
  EXPECT_TRUE(entry->contains("handledMicros")) << entry->dump();
  EXPECT_FALSE(journal_entry("rid-" + quick).has_value());
}

TEST_F(SimFlowsTest, AnUnknownCallbackDateFormatStopsTheStart) {
  std::string line;
  absl::StatusOr<std::unique_ptr<ChildProcess>> sim = ChildProcess::Start(
      SimArgs({"--callback_date_format=iso8601"}), "listening on", &line, absl::Seconds(10));
  EXPECT_FALSE(sim.ok());
}

}  // namespace
}  // namespace flikpay::sim
