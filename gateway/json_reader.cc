#include "gateway/json_reader.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace flikpay::gateway {
namespace {

using Json = nlohmann::json;

const Json& EmptyObject() {
  static const Json* empty = new Json(Json::object());
  return *empty;
}

absl::string_view TypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "something else";
  }
}

}  // namespace

JsonReader::JsonReader(const Json& object, std::string path)
    : JsonReader(&object, std::move(path), std::make_shared<std::string>()) {}

JsonReader::JsonReader(const Json* object, std::string path, std::shared_ptr<std::string> error)
    : object_(object), path_(std::move(path)), error_(std::move(error)) {
  if (!object_->is_object()) {
    if (error_->empty()) {
      *error_ = absl::StrCat(path_.empty() ? "the body" : path_, ": expected an object, got ",
                             TypeName(*object_));
    }
    object_ = &EmptyObject();
  }
}

const Json* JsonReader::Find(absl::string_view key) const {
  auto it = object_->find(std::string(key));
  if (it == object_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonReader::Has(absl::string_view key) const { return Find(key) != nullptr; }

std::string JsonReader::PathOf(absl::string_view key) const {
  return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
}

void JsonReader::WrongType(absl::string_view key, absl::string_view expected, const Json& value) {
  if (error_->empty()) {
    *error_ = absl::StrCat(PathOf(key), ": expected ", expected, ", got ", TypeName(value));
  }
}

std::string JsonReader::Text(absl::string_view key) {
  const Json* value = Find(key);
  if (value == nullptr) return "";
  if (!value->is_string()) {
    WrongType(key, "a string", *value);
    return "";
  }
  return value->get<std::string>();
}

std::string JsonReader::Token(absl::string_view key) {
  const Json* value = Find(key);
  if (value == nullptr) return "";
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_integer()) return std::to_string(value->get<int64_t>());
  WrongType(key, "a string or an integer", *value);
  return "";
}

bool JsonReader::Flag(absl::string_view key) {
  const Json* value = Find(key);
  if (value == nullptr) return false;
  if (!value->is_boolean()) {
    WrongType(key, "a boolean", *value);
    return false;
  }
  return value->get<bool>();
}

int JsonReader::Code(absl::string_view key) {
  const Json* value = Find(key);
  if (value == nullptr) return 0;
  if (value->is_number_integer()) {
    const int64_t code = value->get<int64_t>();
    if (code >= 0 && code <= 999'999) return static_cast<int>(code);
  } else if (value->is_string()) {
    int code = 0;
    const std::string text = value->get<std::string>();
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &code) && code >= 0) return code;
  }
  WrongType(key, "a numeric code", *value);
  return 0;
}

JsonReader JsonReader::Object(absl::string_view key) {
  const Json* value = Find(key);
  if (value == nullptr) return JsonReader(&EmptyObject(), PathOf(key), error_);
  return JsonReader(value, PathOf(key), error_);
}

std::vector<JsonReader> JsonReader::Objects(absl::string_view key) {
  std::vector<JsonReader> entries;
  const Json* value = Find(key);
  if (value == nullptr) return entries;
  if (!value->is_array()) {
    WrongType(key, "an array", *value);
    return entries;
  }
  for (size_t i = 0; i < value->size(); ++i) {
    entries.push_back(JsonReader(&(*value)[i], absl::StrCat(PathOf(key), "[", i, "]"), error_));
  }
  return entries;
}

absl::Status JsonReader::status() const {
  if (error_->empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(*error_);
}

}  // namespace flikpay::gateway
