// The gRPC port's TLS files as mounted (a Kubernetes Secret), checked before gRPC sees them. gRPC's
// file watcher takes whatever the files hold, so a rotation that writes a key not matching its
// certificate, or a half-written file, would make every new handshake fail. Here each version is
// read whole, checked (PEM parses, the key matches the certificate, the CA bundle holds a
// certificate) and only then copied to a private directory, which gRPC watches; a bad version is
// logged and counted, and the previous one stays in force.
#ifndef FLIKPAY_SERVER_TLS_FILES_H_
#define FLIKPAY_SERVER_TLS_FILES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "server/reloading_file.h"

namespace flikpay::server {

struct TlsMaterial {
  std::string certificate_chain;  // PEM, leaf first
  std::string private_key;        // PEM
  std::string client_ca;          // PEM bundle; empty without mutual TLS
};

// INVALID_ARGUMENT naming the setting at fault, e.g. "grpc_tls_key (FLIKPAY_GRPC_TLS_KEY): does
// not match the certificate in grpc_tls_cert".
absl::Status CheckTlsMaterial(const TlsMaterial& material, bool client_ca_required);

class TlsFiles {
 public:
  // Reads and checks the files (`client_ca_path` may be empty), writes the private copies. An
  // error names the setting whose file is at fault.
  static absl::StatusOr<std::unique_ptr<TlsFiles>> Open(const std::string& cert_path,
                                                        const std::string& key_path,
                                                        const std::string& client_ca_path,
                                                        absl::Duration interval,
                                                        prometheus::Counter* failures);
  ~TlsFiles();  // removes the private copies

  // The checked copies, for grpc::experimental::FileWatcherCertificateProvider.
  std::string cert_path() const { return directory_ + "/tls.crt"; }
  std::string key_path() const { return directory_ + "/tls.key"; }
  // Empty without mutual TLS.
  std::string client_ca_path() const { return with_client_ca_ ? directory_ + "/ca.crt" : ""; }

 private:
  TlsFiles(std::string directory, bool with_client_ca)
      : directory_(std::move(directory)), with_client_ca_(with_client_ca) {}
  void Write(const TlsMaterial& material) const;

  const std::string directory_;
  const bool with_client_ca_;
  std::unique_ptr<ReloadingFile<TlsMaterial>> watch_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_TLS_FILES_H_
