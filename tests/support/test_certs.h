#ifndef FLIKPAY_TESTS_SUPPORT_TEST_CERTS_H_
#define FLIKPAY_TESTS_SUPPORT_TEST_CERTS_H_

#include <openssl/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

// A throwaway PKI for tests of the gRPC port's TLS and caller identity: no fixture files to expire
// in the repository, and every case can make the odd certificate it needs (another CA, a rotated
// serial, a client with or without a SPIFFE URI).
//
// Keys are EC P-256, signatures SHA-256, serial numbers random (so a re-issued certificate is told
// apart from the one it replaces), validity from an hour ago (clock skew) to a day ahead.

namespace flikpay::testing {

struct CertFiles {
  std::string cert_path;  // PEM certificate (the leaf only; the CA is the only issuer)
  std::string key_path;   // PEM private key, PKCS#8, mode 0600

  std::string cert_pem() const;
  std::string key_pem() const;
};

// What a leaf certificate says and how long it holds. IssueServer and IssueClient fill it for the
// usual cases; Issue takes it whole for the odd one (expired, both usages, several URIs).
struct LeafSpec {
  std::string common_name;  // empty: the subject carries only O=flikpay test
  std::vector<std::string> dns_sans;
  std::vector<std::string> ip_sans;
  std::vector<std::string> uri_sans;
  bool server_auth = false;
  bool client_auth = false;
  absl::Duration valid_from = absl::Hours(-1);  // relative to now
  absl::Duration valid_until = absl::Hours(24);
};

class TestCa {
 public:
  // A self-signed CA (basicConstraints CA:TRUE, keyUsage keyCertSign) written to
  // `dir`/`name`-ca.crt and -ca.key; `dir` is created if missing. Two calls with different names
  // give independent CAs; the same name again replaces the files (a rotated CA).
  static absl::StatusOr<TestCa> Create(const std::string& dir, const std::string& name);

  TestCa(TestCa&&) noexcept;
  TestCa& operator=(TestCa&&) noexcept;
  ~TestCa();

  const std::string& cert_path() const { return ca_files_.cert_path; }
  const std::string& key_path() const { return ca_files_.key_path; }
  std::string cert_pem() const { return ca_files_.cert_pem(); }

  // Each writes `dir`/`basename`.crt and .key. Issuing to a basename that exists re-issues: both
  // files are replaced by rename, so a reader sees each file whole, old or new. The pair is not
  // swapped as one; use WriteSecretVolume for that.
  //
  // CN=localhost, SAN DNS:localhost, IP:127.0.0.1, extendedKeyUsage serverAuth.
  absl::StatusOr<CertFiles> IssueServer(const std::string& basename);
  // CN=`common_name`, SAN URI:`uri_san` when given, extendedKeyUsage clientAuth.
  absl::StatusOr<CertFiles> IssueClient(const std::string& basename, const std::string& common_name,
                                        const std::string& uri_san = "");
  absl::StatusOr<CertFiles> Issue(const std::string& basename, const LeafSpec& spec);

 private:
  struct KeyDeleter {
    void operator()(EVP_PKEY* key) const;
  };
  struct CertDeleter {
    void operator()(X509* cert) const;
  };

  TestCa(std::string dir, CertFiles ca_files, std::unique_ptr<EVP_PKEY, KeyDeleter> key,
         std::unique_ptr<X509, CertDeleter> cert);

  std::string dir_;
  CertFiles ca_files_;
  std::unique_ptr<EVP_PKEY, KeyDeleter> key_;
  std::unique_ptr<X509, CertDeleter> cert_;
};

// The whole file; empty if it cannot be read (tests assert on the contents anyway).
std::string ReadFile(const std::string& path);

// Replaces `path` with `contents` through a temporary file in the same directory and a rename, so
// a concurrent reader never sees a half-written file. `mode` applies to the new file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 int mode = 0644);

// Writes `files` (name -> contents) into `dir` the way the kubelet updates a mounted Secret or
// ConfigMap: the files live in a fresh hidden directory, `dir`/..data is a symlink to it swapped
// by one rename, and `dir`/<name> are symlinks to ..data/<name>. Every file therefore changes at
// the same instant (a certificate and its key never mismatch), and a reader that watches the
// visible paths sees symlinks whose target, not whose own metadata, changed. The previous
// version's directory is removed after the swap, as the kubelet does.
absl::Status WriteSecretVolume(const std::string& dir,
                               const std::map<std::string, std::string>& files);

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_TEST_CERTS_H_
