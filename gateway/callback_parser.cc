#include "gateway/callback_parser.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/money.h"
#include "pugixml.hpp"

namespace flikpay::gateway {
namespace {

using Json = nlohmann::json;

int ToErrorCode(absl::string_view text) {
  int code = 0;
  return absl::SimpleAtoi(text, &code) ? code : 0;
}

absl::StatusOr<CallbackEvent::Result> ParseResult(absl::string_view text) {
  const std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  if (upper == "OK") return CallbackEvent::Result::kOk;
  if (upper == "PENDING") return CallbackEvent::Result::kPending;
  if (upper == "ERROR") return CallbackEvent::Result::kError;
  return absl::InvalidArgumentError("callback result must be OK, PENDING or ERROR");
}

// The fields every callback must have, checked once for both formats.
absl::Status CheckRequiredAndAmount(CallbackEvent& event, absl::string_view amount) {
  if (event.uuid.empty() && event.merchant_transaction_id.empty()) {
    return absl::InvalidArgumentError("callback names neither uuid nor merchantTransactionId");
  }
  if (event.raw_type.empty()) {
    return absl::InvalidArgumentError("callback has no transactionType");
  }
  event.type = ParseTransactionType(event.raw_type);
  const absl::string_view trimmed = absl::StripAsciiWhitespace(amount);
  if (!trimmed.empty()) {
    absl::StatusOr<int64_t> minor = ParseAmount(trimmed);
    if (!minor.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("callback ", minor.status().message()));
    }
    event.amount_minor = *minor;
  }
  return absl::OkStatus();
}

std::string Trimmed(absl::string_view text) {
  return std::string(absl::StripAsciiWhitespace(text));
}

std::string FirstSix(absl::string_view code) { return std::string(code.substr(0, 6)); }

absl::StatusOr<CallbackEvent> ParseJson(absl::string_view body) {
  const Json root = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("callback body is not a JSON object");
  }
  JsonReader fields(root);
  CallbackEvent event;
  const std::string result_text = fields.Text("result");
  // Seed 000's sample callback carries ids with leading spaces; the ids themselves never have any.
  event.uuid = Trimmed(fields.Text("uuid"));
  event.merchant_transaction_id = Trimmed(fields.Text("merchantTransactionId"));
  event.purchase_id = Trimmed(fields.Text("purchaseId"));
  event.raw_type = fields.Text("transactionType");
  event.payment_method = fields.Text("paymentMethod");
  event.currency = fields.Text("currency");
  event.reference_uuid = Trimmed(fields.Text("referenceUuid"));
  event.merchant_metadata = fields.Text("merchantMetaData");
  event.errors = ParseGatewayErrors(fields);
  JsonReader extra = fields.Object("extraData");
  event.adapter_reference_id = Trimmed(extra.Text("adapterReferenceId"));
  const std::string auth_code = extra.Text("authCode");
  if (fields.Has("returnData")) {
    JsonReader card_fields = fields.Object("returnData");
    CardData card;
    const std::string bin_brand = card_fields.Text("binBrand");
    const std::string type = card_fields.Text("type");
    card.brand = bin_brand.empty() ? absl::AsciiStrToUpper(type) : bin_brand;
    card.first_six_digits = card_fields.Text("firstSixDigits");
    card.last_four_digits = card_fields.Text("lastFourDigits");
    card.card_holder = card_fields.Text("cardHolder");
    card.expiry_month = card_fields.Text("expiryMonth");
    card.expiry_year = card_fields.Text("expiryYear");
    card.auth_code = FirstSix(auth_code);
    event.card = std::move(card);
  }
  const std::string amount = fields.Text("amount");
  if (absl::Status malformed = fields.status(); !malformed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("callback ", malformed.message()));
  }
  absl::StatusOr<CallbackEvent::Result> result = ParseResult(result_text);
  if (!result.ok()) return result.status();
  event.result = *result;
  if (absl::Status status = CheckRequiredAndAmount(event, amount); !status.ok()) {
    return status;
  }
  return event;
}

std::string XmlText(const pugi::xml_node& node, const char* name) {
  return std::string(absl::StripAsciiWhitespace(node.child(name).text().as_string()));
}

absl::StatusOr<CallbackEvent> ParseXml(absl::string_view body) {
  pugi::xml_document document;
  const pugi::xml_parse_result parsed =
      document.load_buffer(body.data(), body.size(), pugi::parse_default);
  if (!parsed) return absl::InvalidArgumentError("callback body is not well-formed XML");
  const pugi::xml_node root = document.child("callback");
  if (!root) return absl::InvalidArgumentError("XML callback has no <callback> root");

  CallbackEvent event;
  absl::StatusOr<CallbackEvent::Result> result = ParseResult(XmlText(root, "result"));
  if (!result.ok()) return result.status();
  event.result = *result;
  // The XML v2 names: referenceId is the gateway's uuid, transactionId the merchant's id.
  event.uuid = XmlText(root, "referenceId");
  event.merchant_transaction_id = XmlText(root, "transactionId");
  event.purchase_id = XmlText(root, "purchaseId");
  event.raw_type = XmlText(root, "transactionType");
  event.payment_method = XmlText(root, "paymentMethod");
  event.currency = XmlText(root, "currency");
  event.merchant_metadata = XmlText(root, "merchantMetaData");
  for (const pugi::xml_node& error : root.child("errors").children("error")) {
    event.errors.push_back(GatewayError{ToErrorCode(XmlText(error, "code")),
                                        XmlText(error, "message"), XmlText(error, "adapterCode"),
                                        XmlText(error, "adapterMessage")});
  }
  std::string auth_code;
  for (const pugi::xml_node& extra : root.children("extraData")) {
    const absl::string_view key = extra.attribute("key").as_string();
    const std::string value(absl::StripAsciiWhitespace(extra.text().as_string()));
    if (key == "authCode") auth_code = value;
    if (key == "adapterReferenceId") event.adapter_reference_id = value;
  }
  if (const pugi::xml_node card_node = root.child("returnData").child("creditcardData")) {
    CardData card;
    card.brand = XmlText(card_node, "binBrand");
    if (card.brand.empty()) card.brand = absl::AsciiStrToUpper(XmlText(card_node, "type"));
    card.first_six_digits = XmlText(card_node, "firstSixDigits");
    card.last_four_digits = XmlText(card_node, "lastFourDigits");
    card.card_holder = XmlText(card_node, "cardHolder");
    card.expiry_month = XmlText(card_node, "expiryMonth");
    card.expiry_year = XmlText(card_node, "expiryYear");
    card.auth_code = FirstSix(auth_code);
    event.card = std::move(card);
  }
  if (absl::Status status = CheckRequiredAndAmount(event, XmlText(root, "amount")); !status.ok()) {
    return status;
  }
  return event;
}

}  // namespace

std::string JsonText(const Json& object, absl::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(std::string(key));
  if (it == object.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  if (it->is_boolean()) return it->get<bool>() ? "true" : "false";
  return "";
}

std::vector<GatewayError> ParseGatewayErrors(JsonReader& object) {
  // API answers spell them errorCode/errorMessage, callbacks and status answers code/message.
  auto read = [](JsonReader& entry) {
    GatewayError error;
    error.code = entry.Has("errorCode") ? entry.Code("errorCode") : entry.Code("code");
    error.message = entry.Has("errorMessage") ? entry.Text("errorMessage") : entry.Text("message");
    error.adapter_code = entry.Has("adapterCode") ? entry.Token("adapterCode") : "";
    error.adapter_message = entry.Text("adapterMessage");
    return error;
  };
  std::vector<GatewayError> errors;
  for (JsonReader& entry : object.Objects("errors")) errors.push_back(read(entry));
  GatewayError top = read(object);
  if (top.code != 0 || !top.message.empty()) {
    bool listed = false;
    for (const GatewayError& error : errors) listed |= error.code == top.code;
    if (!listed) errors.push_back(std::move(top));
  }
  return errors;
}

absl::StatusOr<CallbackEvent> ParseCallbackBody(absl::string_view body) {
  const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(body);
  if (trimmed.empty()) return absl::InvalidArgumentError("callback body is empty");
  if (trimmed.front() == '<') return ParseXml(trimmed);
  return ParseJson(trimmed);
}

}  // namespace flikpay::gateway
