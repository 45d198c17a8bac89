// Who a gRPC call comes from. With TLS, the gRPC port's credentials run CallerAuthenticator on
// every call (PaymentService, health and reflection alike) before any handler: it names the caller
// from the client certificate (mutual TLS) or a bearer token, or refuses the call with
// UNAUTHENTICATED. gRPC 1.51 runs no authenticator on plaintext credentials, so there (bearer
// tokens behind a mesh) PaymentService checks the token itself and health and reflection stay open.
#ifndef FLIKPAY_SERVER_CALLER_AUTH_H_
#define FLIKPAY_SERVER_CALLER_AUTH_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "core/caller_policy.h"
#include "prometheus/counter.h"
#include "server/reloading_file.h"

namespace flikpay::server {

// The AuthContext property that holds the caller's identity once it is authenticated.
inline constexpr char kCallerProperty[] = "flikpay_caller";

enum class AuthMode {
  kMutualTls,    // the client certificate: its SPIFFE URI SAN, else its subject CN
  kBearerToken,  // "authorization: Bearer <token>", against the hashed token file
  kInsecureDev,  // no identity: every call is kDevCaller
};
inline constexpr char kDevCaller[] = "dev";

using TokenFile = ReloadingFile<std::vector<core::TokenEntry>>;

// The identity in a verified client certificate: the SPIFFE id (its one URI SAN, spiffe://...) when
// there is one, else the subject's common name, unless that CN itself looks like a SPIFFE id;
// nullopt without a verified certificate.
std::optional<std::string> CertificateIdentity(const grpc::AuthContext& context);

// The caller whose token this is. The presented token is hashed and compared with every entry in
// constant time, so neither the position of a match nor the length of a common prefix shows in the
// time taken.
std::optional<std::string> TokenCaller(const std::vector<core::TokenEntry>& tokens,
                                       absl::string_view token);

class CallerAuthenticator final : public grpc::AuthMetadataProcessor {
 public:
  // `tokens` is used in kBearerToken mode and must outlive this.
  CallerAuthenticator(AuthMode mode, const TokenFile* tokens, prometheus::Counter* refusals);

  // Certificates and token hashes are in memory: nothing here blocks.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const AuthMode mode_;
  const TokenFile* const tokens_;
  prometheus::Counter* const refusals_;
};

// The caller of "authorization: Bearer <token>", if the token is known.
std::optional<std::string> BearerCaller(const std::vector<core::TokenEntry>& tokens,
                                        absl::string_view authorization);

// The caller of a call: the identity CallerAuthenticator found (TLS credentials), else in
// kBearerToken mode the call's own token checked against `tokens` (plaintext behind a mesh, where
// gRPC 1.51 runs no authenticator), else kDevCaller in kInsecureDev mode. UNAUTHENTICATED when
// there is none.
absl::StatusOr<std::string> CallerOf(const grpc::ServerContextBase& context, AuthMode mode,
                                     const TokenFile* tokens);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_CALLER_AUTH_H_
