// libFuzzer target for callback signature checking: BankartGateway::VerifyCallback with a fixed
// configuration and clock, and the signing functions under it (gateway/signing.h).
//
// Input: byte 0 picks the mode, bytes 1-3 are its controls, the rest is a callback written like an
// HTTP request ("METHOD URI\nname: value\n...\n\nbody"; names are lower-cased as the listener
// does):
//   0  the callback as written, signature and Date included: whatever arrives, the answer is OK,
//      UNAUTHENTICATED or INVALID_ARGUMENT, and OK only for a signed, parseable body.
//   1  the callback signed here with gateway::Sign (or a legacy form) for a connector the controls
//      pick, with a Date near the clock: it must verify exactly when the connector accepts that
//      form, the Date is within the tolerance, the URI names that connector or none, and nothing
//      was changed after signing (body, method or Date, per the controls).
//   2  the primitives: Sign then VerifySignature, Base64 both ways, the body digests, constant-time
//      equality.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/bankart_gateway.h"
#include "gateway/callback_parser.h"
#include "gateway/signing.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using flikpay::gateway::BankartConfig;
using flikpay::gateway::BankartGateway;
using flikpay::gateway::BodyHash;
using flikpay::gateway::CallbackEvent;
using flikpay::gateway::Connector;
using flikpay::gateway::ConnectorCredentials;
using flikpay::gateway::InboundCallback;
using flikpay::gateway::LegacySignatureForms;
using flikpay::gateway::SignedParts;

// Tue, 28 Apr 2026 15:23:40 GMT, the Date of the seeds.
const absl::Time kNow = absl::FromUnixSeconds(1777389820);
constexpr absl::Duration kTolerance = absl::Seconds(60);

// Every legacy combination on one connector each, every secret different, so a callback verified
// by the wrong connector's secret or form shows.
const std::map<Connector, ConnectorCredentials>& Connectors() {
  static const auto* connectors = new std::map<Connector, ConnectorCredentials>{
      {Connector::kEcommerce, {"ecommerce-key", "ecommerce-secret", {}}},
      {Connector::kInPerson, {"in-person-key", "in-person-secret", {.md5_body_hash = true}}},
      {Connector::kOutOfBand, {"out-of-band-key", "out-of-band-secret", {.v2_message = true}}},
      {Connector::kPayout, {"payout-key", "payout-secret", {true, true}}},
  };
  return *connectors;
}

BankartGateway& Gateway() {
  static BankartGateway* gateway = [] {
    BankartConfig config;
    config.base_url = "http://127.0.0.1:1/api/v3";  // never called: VerifyCallback sends nothing
    config.api_user = "user";
    config.api_password = "password";
    config.connectors = Connectors();
    config.callback_date_tolerance = kTolerance;
    config.clock = [] { return kNow; };
    return new BankartGateway(std::move(config));
  }();
  return *gateway;
}

InboundCallback ReadCallback(absl::string_view text) {
  InboundCallback callback;
  std::pair<absl::string_view, absl::string_view> head_body =
      absl::StrSplit(text, absl::MaxSplits("\n\n", 1));
  std::vector<absl::string_view> lines = absl::StrSplit(head_body.first, '\n');
  std::pair<absl::string_view, absl::string_view> request_line =
      absl::StrSplit(lines.front(), absl::MaxSplits(' ', 1));
  callback.method = std::string(request_line.first);
  callback.request_uri = std::string(request_line.second);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> header =
        absl::StrSplit(lines[i], absl::MaxSplits(':', 1));
    callback.headers[absl::AsciiStrToLower(header.first)] =
        std::string(absl::StripLeadingAsciiWhitespace(header.second));
  }
  callback.body = std::string(head_body.second);
  return callback;
}

std::string Show(const InboundCallback& callback) {
  std::string text = absl::StrCat(callback.method, " ", callback.request_uri, "\n");
  for (const auto& [name, value] : callback.headers)
    absl::StrAppend(&text, name, ": ", value, "\n");
  return absl::CEscape(absl::StrCat(text, "\n", callback.body.substr(0, 400)));
}

bool SameEvent(const CallbackEvent& a, const CallbackEvent& b) {
  return a.uuid == b.uuid && a.merchant_transaction_id == b.merchant_transaction_id &&
         a.result == b.result && a.raw_type == b.raw_type && a.amount_minor == b.amount_minor &&
         a.errors.size() == b.errors.size();
}

// What any callback may get back: verified and read, refused, or verified but unreadable.
void CheckAnswer(const InboundCallback& callback, const absl::StatusOr<CallbackEvent>& answer) {
  const absl::StatusCode code = answer.status().code();
  FUZZ_CHECK(code == absl::StatusCode::kOk || code == absl::StatusCode::kUnauthenticated ||
                 code == absl::StatusCode::kInvalidArgument,
             absl::StrCat(Show(callback), "\n  -> ", answer.status().ToString()));
  if (!answer.ok()) return;
  FUZZ_CHECK(answer->connector.has_value(), Show(callback));
  const absl::StatusOr<CallbackEvent> parsed = flikpay::gateway::ParseCallbackBody(callback.body);
  FUZZ_CHECK(parsed.ok() && SameEvent(*parsed, *answer), Show(callback));
}

void CheckAsWritten(absl::string_view text) {
  const InboundCallback callback = ReadCallback(text);
  CheckAnswer(callback, Gateway().VerifyCallback(callback));
}

void CheckSignedHere(const uint8_t* controls, absl::string_view text) {
  constexpr Connector kConnectors[] = {Connector::kEcommerce, Connector::kInPerson,
                                       Connector::kOutOfBand, Connector::kPayout};
  const Connector connector = kConnectors[controls[0] % 4];
  const int naming = (controls[0] / 4) % 3;  // 0 none, 1 this connector, 2 another one
  const bool authorization_header = controls[1] & 1;
  const char* date_header = (controls[1] & 2) != 0 ? "x-date" : "date";
  const bool md5 = (controls[1] & 4) != 0;
  const bool v2 = (controls[1] & 8) != 0;
  const int tamper = (controls[1] >> 4) % 8;  // 1 body, 2 method, 3 Date; otherwise none
  const absl::Duration offset = absl::Seconds(static_cast<int>(controls[2]) - 128);

  InboundCallback callback = ReadCallback(text);
  // The URI is rebuilt so that which connector it names is known here: the written one's path,
  // then the connector, then its query with no '=' so that it names no other.
  const std::pair<std::string, std::string> path_query =
      absl::StrSplit(callback.request_uri, absl::MaxSplits('?', 1));
  std::string query = absl::StrReplaceAll(path_query.second, {{"=", ""}});
  if (naming != 0) {
    const Connector named = naming == 1 ? connector : kConnectors[(controls[0] % 4 + 1) % 4];
    query = absl::StrCat("connector=", flikpay::gateway::ConnectorName(named),
                         query.empty() ? "" : "&", query);
  }
  callback.request_uri =
      query.empty() ? path_query.first : absl::StrCat(path_query.first, "?", query);
  const std::string content_type = callback.headers["content-type"];
  callback.headers.erase("x-signature");
  callback.headers.erase("authorization");
  callback.headers.erase("x-date");
  callback.headers.erase("date");

  const ConnectorCredentials& credentials = Connectors().at(connector);
  const std::string date = flikpay::gateway::FormatHttpDate(kNow + offset);
  const SignedParts parts{callback.method, callback.body, content_type, date, callback.request_uri};
  const std::string signature = !md5 && !v2
                                    ? flikpay::gateway::Sign(credentials.shared_secret, parts)
                                    : flikpay::gateway::HmacSha512Base64(
                                          credentials.shared_secret,
                                          flikpay::gateway::SignatureMessage(
                                              parts, md5 ? BodyHash::kMd5 : BodyHash::kSha512, v2));
  if (authorization_header) {
    callback.headers["authorization"] =
        absl::StrCat("Gateway ", credentials.api_key, ":", signature);
  } else {
    callback.headers["x-signature"] = signature;
  }
  callback.headers[date_header] = date;
  if (tamper == 1) callback.body.push_back('\n');
  if (tamper == 2) callback.method.push_back('X');
  if (tamper == 3) {
    callback.headers[date_header] =
        flikpay::gateway::FormatHttpDate(kNow + offset + absl::Seconds(1));
  }

  const LegacySignatureForms& accepted = credentials.legacy_forms;
  const bool should_verify = absl::AbsDuration(offset) <= kTolerance &&
                             (!md5 || accepted.md5_body_hash) && (!v2 || accepted.v2_message) &&
                             (!authorization_header || accepted.v2_message) && naming != 2 &&
                             (tamper == 0 || tamper > 3);
  const absl::StatusOr<CallbackEvent> answer = Gateway().VerifyCallback(callback);
  CheckAnswer(callback, answer);
  auto shown = [&] {  // built only when a check fails: escaping every input costs speed
    return absl::StrCat(Show(callback), "\n  connector ",
                        flikpay::gateway::ConnectorName(connector), ", naming ", naming, ", md5 ",
                        md5, ", v2 ", v2, ", offset ", absl::FormatDuration(offset), ", tamper ",
                        tamper, "\n  -> ", answer.status().ToString());
  };
  if (!should_verify) {
    FUZZ_CHECK(answer.status().code() == absl::StatusCode::kUnauthenticated, shown());
    return;
  }
  FUZZ_CHECK(answer.status().code() != absl::StatusCode::kUnauthenticated, shown());
  if (answer.ok()) FUZZ_CHECK(answer->connector == connector, shown());
}

void CheckPrimitives(absl::string_view text) {
  const InboundCallback callback = ReadCallback(text);
  const std::string& secret = callback.request_uri;
  const std::string content_type = callback.headers.count("content-type") != 0
                                       ? callback.headers.at("content-type")
                                       : std::string();
  const SignedParts parts{callback.method, callback.body, content_type, "date",
                          "/callbacks/bankart"};
  const std::string signature = flikpay::gateway::Sign(secret, parts);
  auto shown = [&] { return absl::CEscape(text.substr(0, 400)); };
  FUZZ_CHECK(flikpay::gateway::VerifySignature(secret, parts, signature), shown());
  FUZZ_CHECK(!flikpay::gateway::VerifySignature(absl::StrCat(secret, "x"), parts, signature),
             shown());

  const absl::StatusOr<std::string> decoded =
      flikpay::gateway::Base64Decode(flikpay::gateway::Base64Encode(callback.body));
  FUZZ_CHECK(decoded.ok() && *decoded == callback.body, shown());
  flikpay::gateway::Base64Decode(callback.body).status().IgnoreError();

  const flikpay::gateway::BodyDigests digests = flikpay::gateway::DigestBody(callback.body, true);
  FUZZ_CHECK(digests.sha512 == flikpay::gateway::HexDigest(BodyHash::kSha512, callback.body) &&
                 digests.md5 == flikpay::gateway::HexDigest(BodyHash::kMd5, callback.body) &&
                 digests.sha512.size() == 128 && digests.md5.size() == 32 &&
                 absl::AsciiStrToLower(digests.sha512) == digests.sha512,
             shown());

  FUZZ_CHECK(flikpay::gateway::ConstantTimeEquals(secret, callback.method) ==
                     (secret == callback.method) &&
                 flikpay::gateway::ConstantTimeEquals(callback.body, callback.body),
             shown());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 4, size - 4);
  switch (data[0] % 3) {
    case 0:
      CheckAsWritten(text);
      break;
    case 1:
      CheckSignedHere(data + 1, text);
      break;
    default:
      CheckPrimitives(text);
      break;
  }
  return 0;
}
