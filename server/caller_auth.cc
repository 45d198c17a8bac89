#include "server/caller_auth.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "server/audit.h"

namespace flikpay::server {

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot be read"));
  std::string content(max_bytes + 1, '\0');
  file.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (file.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot be read"));
  content.resize(static_cast<size_t>(file.gcount()));
  if (content.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": larger than ", max_bytes, " bytes; is it the right file?"));
  }
  return content;
}

namespace {

constexpr char kTokenRefusal[] =
    "an \"authorization: Bearer <token>\" header with a known token is required";

std::optional<std::string> FirstValue(const grpc::AuthContext& context, const char* property) {
  for (const grpc::string_ref& value : context.FindPropertyValues(property)) {
    if (value.size() > 0) return std::string(value.data(), value.size());
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> CertificateIdentity(const grpc::AuthContext& context) {
  // gRPC sets peer_spiffe_id only for a certificate with exactly one URI SAN, a SPIFFE id (as the
  // SPIFFE standard requires); a certificate with several URIs is named by its CN.
  if (auto spiffe = FirstValue(context, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME)) return spiffe;
  std::optional<std::string> common_name = FirstValue(context, GRPC_X509_CN_PROPERTY_NAME);
  // A subject CN is whatever the certificate's requester wrote: it may not pose as a SPIFFE id.
  if (common_name && absl::StartsWithIgnoreCase(*common_name, "spiffe:")) return std::nullopt;
  return common_name;
}

std::optional<std::string> TokenCaller(const std::vector<core::TokenEntry>& tokens,
                                       absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::optional<std::string> caller;
  // Every entry is compared, match or not.
  for (const core::TokenEntry& entry : tokens) {
    if (CRYPTO_memcmp(entry.sha256.data(), digest, sizeof(digest)) == 0 && !caller) {
      caller = entry.caller;
    }
  }
  return caller;
}

std::optional<std::string> BearerCaller(const std::vector<core::TokenEntry>& tokens,
                                        absl::string_view authorization) {
  // The scheme is case-insensitive (RFC 7235).
  if (!absl::StartsWithIgnoreCase(authorization, "bearer ")) return std::nullopt;
  authorization.remove_prefix(7);
  return TokenCaller(tokens, absl::StripAsciiWhitespace(authorization));
}

CallerAuthenticator::CallerAuthenticator(AuthMode mode, const TokenFile* tokens,
                                         prometheus::Counter* refusals)
    : mode_(mode), tokens_(tokens), refusals_(refusals) {}

grpc::Status CallerAuthenticator::Process(const InputMetadata& auth_metadata,
                                          grpc::AuthContext* context,
                                          OutputMetadata* consumed_auth_metadata,
                                          OutputMetadata* /*response_metadata*/) {
  std::optional<std::string> caller;
  absl::string_view refusal = "a client certificate issued by the callers' CA is required";
  if (mode_ == AuthMode::kMutualTls) {
    caller = CertificateIdentity(*context);
  } else if (mode_ == AuthMode::kBearerToken) {
    refusal = kTokenRefusal;
    auto header = auth_metadata.find("authorization");
    if (header != auth_metadata.end()) {
      const std::string value(header->second.data(), header->second.size());
      // Consumed: the token is not passed on to the handlers (or anything they might log).
      consumed_auth_metadata->insert({"authorization", value});
      if (tokens_ != nullptr) caller = BearerCaller(*tokens_->current(), value);
    }
  }
  if (!caller) {
    if (refusals_ != nullptr) refusals_->Increment();
    AuditEntry audit;
    auto path = auth_metadata.find(":path");
    if (path != auth_metadata.end())
      audit.rpc = std::string(path->second.data(), path->second.size());
    auto offered = auth_metadata.find("x-request-id");
    audit.request_id =
        RequestIdFrom(offered == auth_metadata.end()
                          ? absl::string_view()
                          : absl::string_view(offered->second.data(), offered->second.size()));
    audit.outcome = absl::UnauthenticatedError(refusal);
    LogRpc(audit, /*audit=*/true);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(refusal));
  }
  context->AddProperty(kCallerProperty, *caller);
  context->SetPeerIdentityPropertyName(kCallerProperty);
  return grpc::Status::OK;
}

absl::StatusOr<std::string> CallerOf(const grpc::ServerContextBase& context, AuthMode mode,
                                     const TokenFile* tokens) {
  if (mode == AuthMode::kInsecureDev) return std::string(kDevCaller);
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(kCallerProperty)) {
      return std::string(value.data(), value.size());
    }
  }
  // Plaintext behind a mesh: gRPC runs no authenticator on insecure credentials, so the token is
  // checked here, per call.
  if (mode == AuthMode::kBearerToken && tokens != nullptr) {
    const auto& metadata = context.client_metadata();
    auto header = metadata.find("authorization");
    if (header != metadata.end()) {
      if (std::optional<std::string> caller =
              BearerCaller(*tokens->current(),
                           absl::string_view(header->second.data(), header->second.size()))) {
        return *caller;
      }
    }
    return absl::UnauthenticatedError(kTokenRefusal);
  }
  return absl::UnauthenticatedError("the caller is not authenticated");
}

}  // namespace flikpay::server
