// Reads the fields of a JSON object that came from outside (the gateway's answers and callbacks),
// checking each value's type where it is read. A field of the wrong type (a gateway bug, a proxy's
// JSON error page) is remembered and reported by status(), never thrown: nlohmann::json's typed
// accessors throw on a mismatch, and one such answer must not take a replica down.
#ifndef FLIKPAY_GATEWAY_JSON_READER_H_
#define FLIKPAY_GATEWAY_JSON_READER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace flikpay::gateway {

class JsonReader {
 public:
  // `object` must outlive the reader. Anything but an object reads as an empty one and is an error
  // (named `path`, "" for the root).
  explicit JsonReader(const nlohmann::json& object, std::string path = "");

  // Absent and null read as empty (every field Bankart documents is optional somewhere).
  std::string Text(absl::string_view key);
  bool Flag(absl::string_view key);
  // A string, or an integer read as its digits: for codes the bank behind Bankart sets
  // (adapterCode "03" or 200), which are text but sometimes sent as numbers.
  std::string Token(absl::string_view key);
  // Bankart's numeric codes are integers; a string of digits is read too (the XML-derived forms
  // and some proxies send them so). 0 when absent.
  int Code(absl::string_view key);
  JsonReader Object(absl::string_view key);
  // An array of objects; each entry that is not an object is an error.
  std::vector<JsonReader> Objects(absl::string_view key);
  bool Has(absl::string_view key) const;

  // OK, or INVALID_ARGUMENT naming the first field of the wrong type, e.g.
  // "extraData.expiresDateTime: expected a string, got a number".
  absl::Status status() const;

 private:
  JsonReader(const nlohmann::json* object, std::string path, std::shared_ptr<std::string> error);
  const nlohmann::json* Find(absl::string_view key) const;
  std::string PathOf(absl::string_view key) const;
  void WrongType(absl::string_view key, absl::string_view expected, const nlohmann::json& value);

  const nlohmann::json* object_;
  std::string path_;
  // Shared with the readers of nested objects, so the root reports the first error anywhere.
  std::shared_ptr<std::string> error_;
};

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_JSON_READER_H_
