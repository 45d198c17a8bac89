#include "server/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_split.h"

namespace flikpay::server {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  return std::unique_ptr<X509, X509Free>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

constexpr char kCert[] = "grpc_tls_cert (FLIKPAY_GRPC_TLS_CERT)";
constexpr char kKey[] = "grpc_tls_key (FLIKPAY_GRPC_TLS_KEY)";
constexpr char kClientCa[] = "grpc_client_ca (FLIKPAY_GRPC_CLIENT_CA)";

// The three files read as one content, so a rotation is seen (and checked) as a whole. PEM never
// holds a NUL byte.
constexpr char kSeparator = '\0';

}  // namespace

absl::Status CheckTlsMaterial(const TlsMaterial& material, bool client_ca_required) {
  std::unique_ptr<X509, X509Free> certificate = FirstCertificate(material.certificate_chain);
  std::unique_ptr<EVP_PKEY, KeyFree> key;
  {
    auto bio = MemoryBio(material.private_key);
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  }
  // OpenSSL queues an error for each failed read; they are answered here, not left for the next
  // caller of OpenSSL on this thread.
  ERR_clear_error();
  if (certificate == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(kCert, ": no PEM certificate"));
  }
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(kKey, ": no PEM private key"));
  }
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(kKey, ": does not match the certificate in grpc_tls_cert"));
  }
  if (client_ca_required && FirstCertificate(material.client_ca) == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(kClientCa, ": no PEM certificate"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TlsFiles>> TlsFiles::Open(const std::string& cert_path,
                                                         const std::string& key_path,
                                                         const std::string& client_ca_path,
                                                         absl::Duration interval,
                                                         prometheus::Counter* failures) {
  const char* tmp = std::getenv("TMPDIR");
  std::string directory = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                       "/flikpay-tls-XXXXXX");  // mkdtemp's template
  if (mkdtemp(directory.data()) == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot make a private directory for the TLS files in ", directory));
  }
  const bool with_client_ca = !client_ca_path.empty();
  std::unique_ptr<TlsFiles> files(new TlsFiles(directory, with_client_ca));
  auto read = [cert_path, key_path, client_ca_path]() -> absl::StatusOr<std::string> {
    std::string content;
    for (const auto& [name, path] : {std::pair{kCert, cert_path}, std::pair{kKey, key_path},
                                     std::pair{kClientCa, client_ca_path}}) {
      if (path.empty()) continue;
      absl::StatusOr<std::string> file = ReadSmallFile(path);
      if (!file.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": ", file.status().message()));
      }
      absl::StrAppend(&content, *file, std::string(1, kSeparator));
    }
    return content;
  };
  auto parse = [with_client_ca](const std::string& content) -> absl::StatusOr<TlsMaterial> {
    std::vector<std::string> parts = absl::StrSplit(content, kSeparator);
    TlsMaterial material;
    material.certificate_chain = parts.size() > 0 ? parts[0] : "";
    material.private_key = parts.size() > 1 ? parts[1] : "";
    if (with_client_ca) material.client_ca = parts.size() > 2 ? parts[2] : "";
    if (absl::Status s = CheckTlsMaterial(material, with_client_ca); !s.ok()) return s;
    return material;
  };
  const TlsFiles* self = files.get();
  absl::StatusOr<std::unique_ptr<ReloadingFile<TlsMaterial>>> watch =
      ReloadingFile<TlsMaterial>::Open(
          "the gRPC port's TLS files", read, parse, interval, failures,
          [self](const TlsMaterial& material) { self->Write(material); });
  if (!watch.ok()) return watch.status();
  files->watch_ = *std::move(watch);
  return files;
}

TlsFiles::~TlsFiles() {
  watch_.reset();  // no write after this
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

void TlsFiles::Write(const TlsMaterial& material) const {
  // Each file is replaced by one rename, so gRPC never reads a half-written one. A refresh that
  // fell between the key's rename and the certificate's would read a mismatched pair: the window
  // is microseconds against a refresh every interval, and the next refresh reads the match.
  for (const auto& [path, content] : {std::pair{key_path(), &material.private_key},
                                      std::pair{cert_path(), &material.certificate_chain},
                                      std::pair{client_ca_path(), &material.client_ca}}) {
    if (path.empty()) continue;
    const std::string temporary = path + ".new";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << *content;
    }
    chmod(temporary.c_str(), 0600);
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
      Log(LogLevel::kError, "cannot replace %s; the previous TLS files stay in force", path);
    }
  }
}

}  // namespace flikpay::server
