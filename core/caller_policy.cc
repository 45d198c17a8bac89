#include "core/caller_policy.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace flikpay::core {
namespace {

using Json = nlohmann::json;

constexpr Rpc kAllRpcs[] = {Rpc::kCreateRtp, Rpc::kRefund, Rpc::kPayout, Rpc::kGetStatus,
                            Rpc::kStreamStatus};

struct KindName {
  v1::RtpKind kind;
  absl::string_view name;
};
constexpr KindName kKinds[] = {{v1::RTP_KIND_ECOMMERCE, "ECOMMERCE"},
                               {v1::RTP_KIND_IN_PERSON, "IN_PERSON"},
                               {v1::RTP_KIND_OUT_OF_BAND, "OUT_OF_BAND"}};

absl::string_view KindNameOf(v1::RtpKind kind) {
  for (const KindName& known : kKinds) {
    if (known.kind == kind) return known.name;
  }
  return "UNSPECIFIED";
}

absl::Status Mistake(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status OnlyKeys(const Json& object, const std::string& where,
                      std::initializer_list<absl::string_view> keys) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (absl::string_view allowed : keys) known = known || key == allowed;
    if (!known) return Mistake(absl::StrCat(where, ".", key), "unknown key");
  }
  return absl::OkStatus();
}

// A whole number in [minimum, maximum]; JSON numbers with a fraction or beyond int64 are refused.
absl::StatusOr<int64_t> WholeNumber(const Json& value, const std::string& where, int64_t minimum,
                                    int64_t maximum) {
  int64_t number = 0;
  if (value.is_number_unsigned()) {
    const uint64_t unsigned_number = value.get<uint64_t>();
    if (unsigned_number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Mistake(where, "too large");
    }
    number = static_cast<int64_t>(unsigned_number);
  } else if (value.is_number_integer()) {
    number = value.get<int64_t>();
  } else {
    return Mistake(where, "must be a whole number");
  }
  if (number < minimum || number > maximum) {
    return Mistake(where,
                   absl::StrCat("must be from ", minimum, " to ", maximum, ", not ", number));
  }
  return number;
}

absl::StatusOr<Rpc> RpcNamed(absl::string_view name, const std::string& where) {
  for (Rpc rpc : kAllRpcs) {
    if (RpcName(rpc) == name) return rpc;
  }
  return Mistake(where, absl::StrCat("unknown RPC \"", name,
                                     "\" (CreateRtp, Refund, Payout, GetStatus, StreamStatus)"));
}

absl::StatusOr<AmountLimit> ParseLimit(const Json& value, const std::string& where) {
  if (!value.is_object()) return Mistake(where, "must be an object");
  if (absl::Status s = OnlyKeys(value, where, {"max_amount_minor", "max_daily_amount_minor"});
      !s.ok()) {
    return s;
  }
  AmountLimit limit;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (const auto& [key, target] : {std::pair{"max_amount_minor", &limit.per_transaction_minor},
                                    std::pair{"max_daily_amount_minor", &limit.per_day_minor}}) {
    const std::string field = absl::StrCat(where, ".", key);
    if (!value.contains(key)) return Mistake(field, "required");
    absl::StatusOr<int64_t> number = WholeNumber(value[key], field, 0, kMax);
    if (!number.ok()) return number.status();
    *target = *number;
  }
  if (limit.per_transaction_minor > limit.per_day_minor) {
    return Mistake(where, "max_amount_minor is above max_daily_amount_minor");
  }
  return limit;
}

absl::StatusOr<CallerGrant> ParseGrant(const Json& value, const std::string& where) {
  if (!value.is_object()) return Mistake(where, "must be an object");
  if (absl::Status s = OnlyKeys(
          value, where,
          {"rpcs", "kinds", "read_all", "limits", "max_concurrent_calls", "calls_per_second"});
      !s.ok()) {
    return s;
  }
  CallerGrant grant;
  if (!value.contains("rpcs") || !value["rpcs"].is_array()) {
    return Mistake(absl::StrCat(where, ".rpcs"), "required, a list of RPC names");
  }
  for (size_t i = 0; i < value["rpcs"].size(); ++i) {
    const std::string field = absl::StrCat(where, ".rpcs[", i, "]");
    const Json& name = value["rpcs"][i];
    if (!name.is_string()) return Mistake(field, "must be a string");
    absl::StatusOr<Rpc> rpc = RpcNamed(name.get<std::string>(), field);
    if (!rpc.ok()) return rpc.status();
    grant.rpcs.insert(*rpc);
  }
  if (value.contains("kinds")) {
    const Json& kinds = value["kinds"];
    if (!kinds.is_array()) return Mistake(absl::StrCat(where, ".kinds"), "must be a list");
    for (size_t i = 0; i < kinds.size(); ++i) {
      const std::string field = absl::StrCat(where, ".kinds[", i, "]");
      bool known = false;
      for (const KindName& kind : kKinds) {
        if (kinds[i].is_string() && kinds[i].get<std::string>() == kind.name) {
          grant.kinds.insert(kind.kind);
          known = true;
        }
      }
      if (!known) return Mistake(field, "must be ECOMMERCE, IN_PERSON or OUT_OF_BAND");
    }
  } else if (grant.rpcs.count(Rpc::kCreateRtp) > 0) {
    for (const KindName& kind : kKinds) grant.kinds.insert(kind.kind);
  }
  if (value.contains("read_all")) {
    if (!value["read_all"].is_boolean()) {
      return Mistake(absl::StrCat(where, ".read_all"), "must be true or false");
    }
    grant.read_all = value["read_all"].get<bool>();
  }
  if (value.contains("limits")) {
    const Json& limits = value["limits"];
    const std::string field = absl::StrCat(where, ".limits");
    if (!limits.is_object()) return Mistake(field, "must be an object");
    for (const auto& [name, limit_value] : limits.items()) {
      const std::string limit_field = absl::StrCat(field, ".", name);
      absl::StatusOr<Rpc> rpc = RpcNamed(name, limit_field);
      if (!rpc.ok()) return rpc.status();
      if (!MovesMoney(*rpc)) return Mistake(limit_field, "only money RPCs have amount limits");
      absl::StatusOr<AmountLimit> limit = ParseLimit(limit_value, limit_field);
      if (!limit.ok()) return limit.status();
      grant.limits[*rpc] = *limit;
    }
  }
  for (Rpc rpc : grant.rpcs) {
    if (MovesMoney(rpc) && grant.limits.count(rpc) == 0) {
      return Mistake(absl::StrCat(where, ".limits.", RpcName(rpc)),
                     "required: every money RPC granted needs its limits");
    }
  }
  for (const auto& [key, target, maximum] :
       {std::tuple{"max_concurrent_calls", &grant.max_concurrent_calls, 10'000},
        std::tuple{"calls_per_second", &grant.calls_per_second, 1'000'000}}) {
    if (!value.contains(key)) continue;
    absl::StatusOr<int64_t> number =
        WholeNumber(value[key], absl::StrCat(where, ".", key), 1, maximum);
    if (!number.ok()) return number.status();
    *target = static_cast<int>(*number);
  }
  return grant;
}

}  // namespace

absl::string_view RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCreateRtp:
      return "CreateRtp";
    case Rpc::kRefund:
      return "Refund";
    case Rpc::kPayout:
      return "Payout";
    case Rpc::kGetStatus:
      return "GetStatus";
    case Rpc::kStreamStatus:
      return "StreamStatus";
  }
  return "?";
}

bool MovesMoney(Rpc rpc) {
  return rpc == Rpc::kCreateRtp || rpc == Rpc::kRefund || rpc == Rpc::kPayout;
}

const CallerGrant* CallerPolicy::Find(absl::string_view caller) const {
  auto found = callers.find(caller);
  return found == callers.end() ? nullptr : &found->second;
}

absl::StatusOr<CallerPolicy> ParseCallerPolicy(absl::string_view json) {
  const Json document = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return Mistake("policy", "not valid JSON");
  if (!document.is_object()) return Mistake("policy", "must be a JSON object");
  if (absl::Status s = OnlyKeys(document, "policy", {"callers"}); !s.ok()) return s;
  if (!document.contains("callers") || !document["callers"].is_object()) {
    return Mistake("callers", "required, an object of caller identities");
  }
  CallerPolicy policy;
  for (const auto& [caller, value] : document["callers"].items()) {
    const std::string where = absl::StrCat("callers[\"", absl::CHexEscape(caller), "\"]");
    if (caller.empty()) return Mistake(where, "a caller identity may not be empty");
    absl::StatusOr<CallerGrant> grant = ParseGrant(value, where);
    if (!grant.ok()) return grant.status();
    policy.callers.emplace(caller, *std::move(grant));
  }
  return policy;
}

CallerPolicy DevPolicy(absl::string_view caller) {
  CallerGrant grant;
  for (Rpc rpc : kAllRpcs) grant.rpcs.insert(rpc);
  for (const KindName& kind : kKinds) grant.kinds.insert(kind.kind);
  grant.read_all = true;
  for (Rpc rpc : kAllRpcs) {
    if (MovesMoney(rpc)) {
      grant.limits[rpc] = {std::numeric_limits<int64_t>::max(),
                           std::numeric_limits<int64_t>::max()};
    }
  }
  grant.max_concurrent_calls = 64;
  grant.calls_per_second = 1'000'000;
  CallerPolicy policy;
  policy.callers.emplace(std::string(caller), grant);
  return policy;
}

absl::Status Permit(const CallerGrant* grant, absl::string_view caller, Rpc rpc) {
  if (grant == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("caller ", caller, " is not in the caller policy"));
  }
  if (grant->rpcs.count(rpc) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("caller ", caller, " may not call ", RpcName(rpc)));
  }
  return absl::OkStatus();
}

absl::Status PermitKind(const CallerGrant& grant, absl::string_view caller, v1::RtpKind kind) {
  if (grant.kinds.count(kind) > 0) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("kind: caller ", caller, " may not ask for ", KindNameOf(kind), " payments"));
}

absl::Status CheckTransactionLimit(const CallerGrant& grant, absl::string_view caller, Rpc rpc,
                                   int64_t amount_minor) {
  auto limit = grant.limits.find(rpc);
  if (limit == grant.limits.end() || amount_minor <= limit->second.per_transaction_minor) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("amount_minor: ", amount_minor, " is above caller ", caller, "'s ", RpcName(rpc),
                   " limit per transaction (", limit->second.per_transaction_minor, ")"));
}

std::optional<int64_t> DailyLimit(const CallerGrant& grant, Rpc rpc) {
  auto limit = grant.limits.find(rpc);
  if (limit == grant.limits.end()) return std::nullopt;
  return limit->second.per_day_minor;
}

absl::Status DailyLimitExceeded(absl::string_view caller, Rpc rpc, int64_t amount_minor,
                                int64_t spent_minor, int64_t limit_minor) {
  return absl::FailedPreconditionError(absl::StrCat(
      "amount_minor: ", amount_minor, " would pass caller ", caller, "'s ", RpcName(rpc),
      " limit per day (", limit_minor, "; ", spent_minor, " used in the last 24 hours)"));
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(absl::string_view text) {
  std::vector<TokenEntry> entries;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    const std::string where = absl::StrCat("line ", number);
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    absl::string_view hex;
    if (parts.size() != 2 || !absl::ConsumePrefix(&(hex = parts[1]), "sha256:")) {
      return Mistake(where, "expected \"<caller> sha256:<hex of the token's SHA-256>\"");
    }
    if (hex.size() != 64 ||
        !std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
      return Mistake(where, "the SHA-256 must be 64 hex digits");
    }
    TokenEntry entry;
    entry.caller = std::string(parts[0]);
    const std::string bytes = absl::HexStringToBytes(hex);
    std::copy(bytes.begin(), bytes.end(), entry.sha256.begin());
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace flikpay::core
