#include "tests/support/test_certs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flikpay::testing {
namespace {

namespace fs = std::filesystem;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct NameFree {
  void operator()(X509_NAME* name) const { X509_NAME_free(name); }
};
struct ExtensionFree {
  void operator()(X509_EXTENSION* ext) const { X509_EXTENSION_free(ext); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};
struct GeneralNameFree {
  void operator()(GENERAL_NAME* name) const { GENERAL_NAME_free(name); }
};
struct Asn1StringFree {
  void operator()(ASN1_STRING* s) const { ASN1_STRING_free(s); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

// OpenSSL reports through its thread-local error queue; draining it here also keeps one failure
// from being blamed on a later, unrelated call.
absl::Status OpenSslError(const std::string& what) {
  std::vector<std::string> reasons;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    reasons.emplace_back(buffer);
  }
  return absl::InternalError(
      absl::StrCat(what, reasons.empty() ? "" : ": ", absl::StrJoin(reasons, "; ")));
}

absl::Status ErrnoError(const std::string& what, int error) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(error)));
}

absl::StatusOr<KeyPtr> NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("EC P-256 key generation");
  return key;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> CertPem(const X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpenSslError("PEM of a certificate");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> KeyPem(const EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM of a private key");
  }
  return BioContents(bio.get());
}

absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  std::unique_ptr<X509_EXTENSION, ExtensionFree> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// Built name by name rather than through the "DNS:a, URI:b" config syntax, so a test may put any
// text (commas, colons) in a URI to see how the server parses it.
absl::Status AddSubjectAltNames(X509* cert, const LeafSpec& spec) {
  if (spec.dns_sans.empty() && spec.ip_sans.empty() && spec.uri_sans.empty()) {
    return absl::OkStatus();
  }
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(GENERAL_NAMES_new());
  if (names == nullptr) return OpenSslError("GENERAL_NAMES_new");
  auto push_string = [&](int type, const std::string& value) -> absl::Status {
    std::unique_ptr<ASN1_STRING, Asn1StringFree> text(ASN1_IA5STRING_new());
    std::unique_ptr<GENERAL_NAME, GeneralNameFree> name(GENERAL_NAME_new());
    if (text == nullptr || name == nullptr ||
        ASN1_STRING_set(text.get(), value.data(), static_cast<int>(value.size())) != 1) {
      return OpenSslError(absl::StrCat("subjectAltName ", value));
    }
    GENERAL_NAME_set0_value(name.get(), type, text.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
      return OpenSslError("subjectAltName push");
    }
    name.release();
    return absl::OkStatus();
  };
  for (const std::string& dns : spec.dns_sans) {
    if (absl::Status s = push_string(GEN_DNS, dns); !s.ok()) return s;
  }
  for (const std::string& uri : spec.uri_sans) {
    if (absl::Status s = push_string(GEN_URI, uri); !s.ok()) return s;
  }
  for (const std::string& ip : spec.ip_sans) {
    std::unique_ptr<GENERAL_NAME, GeneralNameFree> name(GENERAL_NAME_new());
    ASN1_OCTET_STRING* address = a2i_IPADDRESS(ip.c_str());
    if (name == nullptr || address == nullptr) {
      ASN1_OCTET_STRING_free(address);
      return OpenSslError(absl::StrCat("subjectAltName IP ", ip));
    }
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, address);
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
      return OpenSslError("subjectAltName push");
    }
    name.release();
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("subjectAltName");
  }
  return absl::OkStatus();
}

// A certificate for `subject_key`, signed by `issuer_key`; `issuer` null means self-signed.
absl::StatusOr<CertPtr> BuildCert(const LeafSpec& spec, bool ca, EVP_PKEY* subject_key,
                                  X509* issuer, EVP_PKEY* issuer_key) {
  CertPtr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return OpenSslError("X509_new");
  }

  // Below 2^127: positive and within RFC 5280's 20 octets, and two never collide in practice.
  std::unique_ptr<BIGNUM, BnFree> serial(BN_new());
  if (serial == nullptr || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslError("serial number");
  }

  const absl::Time now = absl::Now();
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(now + spec.valid_from)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(now + spec.valid_until)) ==
          nullptr) {
    return OpenSslError("validity");
  }

  std::unique_ptr<X509_NAME, NameFree> name(X509_NAME_new());
  const auto add_entry = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (name == nullptr || !add_entry("O", "flikpay test") ||
      (!spec.common_name.empty() && !add_entry("CN", spec.common_name)) ||
      X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(),
                           issuer == nullptr ? name.get() : X509_get_subject_name(issuer)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OpenSslError("subject");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer == nullptr ? cert.get() : issuer, cert.get(), nullptr, nullptr, 0);
  const bool server = spec.server_auth, client = spec.client_auth;
  const char* eku = server && client ? "serverAuth,clientAuth"
                    : server         ? "serverAuth"
                    : client         ? "clientAuth"
                                     : nullptr;
  absl::Status status = AddConfExtension(cert.get(), &ctx, NID_basic_constraints,
                                         ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (status.ok()) {
    status = AddConfExtension(cert.get(), &ctx, NID_key_usage,
                              ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  }
  if (status.ok() && eku != nullptr) {
    status = AddConfExtension(cert.get(), &ctx, NID_ext_key_usage, eku);
  }
  // The subject key id comes first: a self-signed CA's authority key id is taken from it.
  if (status.ok()) status = AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (status.ok()) {
    status = AddConfExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (status.ok()) status = AddSubjectAltNames(cert.get(), spec);
  if (!status.ok()) return status;

  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return OpenSslError("X509_sign");
  return cert;
}

absl::Status WritePair(const CertFiles& files, const X509* cert, const EVP_PKEY* key) {
  absl::StatusOr<std::string> key_pem = KeyPem(key);
  if (!key_pem.ok()) return key_pem.status();
  absl::StatusOr<std::string> cert_pem = CertPem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  if (absl::Status s = WriteFileAtomically(files.key_path, *key_pem, 0600); !s.ok()) return s;
  return WriteFileAtomically(files.cert_path, *cert_pem, 0644);
}

}  // namespace

std::string CertFiles::cert_pem() const { return ReadFile(cert_path); }
std::string CertFiles::key_pem() const { return ReadFile(key_path); }

void TestCa::KeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
void TestCa::CertDeleter::operator()(X509* cert) const { X509_free(cert); }

TestCa::TestCa(std::string dir, CertFiles ca_files, std::unique_ptr<EVP_PKEY, KeyDeleter> key,
               std::unique_ptr<X509, CertDeleter> cert)
    : dir_(std::move(dir)),
      ca_files_(std::move(ca_files)),
      key_(std::move(key)),
      cert_(std::move(cert)) {}
TestCa::TestCa(TestCa&&) noexcept = default;
TestCa& TestCa::operator=(TestCa&&) noexcept = default;
TestCa::~TestCa() = default;

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir, const std::string& name) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", error.message()));

  absl::StatusOr<KeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  LeafSpec spec;
  spec.common_name = absl::StrCat(name, " test CA");
  absl::StatusOr<CertPtr> cert = BuildCert(spec, /*ca=*/true, key->get(), nullptr, key->get());
  if (!cert.ok()) return cert.status();

  CertFiles files{absl::StrCat(dir, "/", name, "-ca.crt"), absl::StrCat(dir, "/", name, "-ca.key")};
  if (absl::Status s = WritePair(files, cert->get(), key->get()); !s.ok()) return s;
  return TestCa(dir, std::move(files), std::unique_ptr<EVP_PKEY, KeyDeleter>(key->release()),
                std::unique_ptr<X509, CertDeleter>(cert->release()));
}

absl::StatusOr<CertFiles> TestCa::IssueServer(const std::string& basename) {
  LeafSpec spec;
  spec.common_name = "localhost";
  spec.dns_sans = {"localhost"};
  spec.ip_sans = {"127.0.0.1"};
  spec.server_auth = true;
  return Issue(basename, spec);
}

absl::StatusOr<CertFiles> TestCa::IssueClient(const std::string& basename,
                                              const std::string& common_name,
                                              const std::string& uri_san) {
  LeafSpec spec;
  spec.common_name = common_name;
  if (!uri_san.empty()) spec.uri_sans = {uri_san};
  spec.client_auth = true;
  return Issue(basename, spec);
}

absl::StatusOr<CertFiles> TestCa::Issue(const std::string& basename, const LeafSpec& spec) {
  absl::StatusOr<KeyPtr> key = NewKey();
  if (!key.ok()) return key.status();
  absl::StatusOr<CertPtr> cert = BuildCert(spec, /*ca=*/false, key->get(), cert_.get(), key_.get());
  if (!cert.ok()) return cert.status();
  CertFiles files{absl::StrCat(dir_, "/", basename, ".crt"),
                  absl::StrCat(dir_, "/", basename, ".key")};
  if (absl::Status s = WritePair(files, cert->get(), key->get()); !s.ok()) return s;
  return files;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return in ? out.str() : std::string();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents, int mode) {
  std::string temp = absl::StrCat(path, ".tmp.XXXXXX");
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return ErrnoError(absl::StrCat("mkstemp ", temp), errno);
  absl::Status status;
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) status = ErrnoError("fchmod", errno);
  for (size_t written = 0; status.ok() && written < contents.size();) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoError(absl::StrCat("write ", temp), errno);
    } else {
      written += static_cast<size_t>(n);
    }
  }
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(absl::StrCat("close ", temp), errno);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoError(absl::StrCat("rename ", temp, " to ", path), errno);
  }
  if (!status.ok()) ::unlink(temp.c_str());
  return status;
}

absl::Status WriteSecretVolume(const std::string& dir,
                               const std::map<std::string, std::string>& files) {
  for (const auto& [name, contents] : files) {
    if (name.empty() || absl::StrContains(name, "/") || absl::StartsWith(name, "..")) {
      return absl::InvalidArgumentError(absl::StrCat("secret volume file name: ", name));
    }
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", error.message()));

  std::string version = absl::StrCat(dir, "/..version_XXXXXX");
  if (::mkdtemp(version.data()) == nullptr) {
    return ErrnoError(absl::StrCat("mkdtemp ", version), errno);
  }
  for (const auto& [name, contents] : files) {
    if (absl::Status s = WriteFileAtomically(absl::StrCat(version, "/", name), contents, 0644);
        !s.ok()) {
      return s;
    }
  }

  const std::string data = absl::StrCat(dir, "/..data");
  const std::string data_tmp = absl::StrCat(dir, "/..data_tmp");
  std::string previous(PATH_MAX, '\0');
  const ssize_t previous_size = ::readlink(data.c_str(), previous.data(), previous.size());
  previous.resize(previous_size > 0 ? static_cast<size_t>(previous_size) : 0);
  ::unlink(data_tmp.c_str());
  const std::string version_name = fs::path(version).filename();
  if (::symlink(version_name.c_str(), data_tmp.c_str()) != 0) {
    return ErrnoError(absl::StrCat("symlink ", data_tmp), errno);
  }
  if (::rename(data_tmp.c_str(), data.c_str()) != 0) {
    return ErrnoError(absl::StrCat("rename ", data_tmp, " to ", data), errno);
  }

  for (const auto& [name, contents] : files) {
    const std::string visible = absl::StrCat(dir, "/", name);
    struct stat st;
    if (::lstat(visible.c_str(), &st) == 0) continue;
    if (::symlink(absl::StrCat("..data/", name).c_str(), visible.c_str()) != 0) {
      return ErrnoError(absl::StrCat("symlink ", visible), errno);
    }
  }
  if (!previous.empty()) {
    const fs::path old_version = fs::path(dir) / previous;
    for (const fs::directory_entry& entry : fs::directory_iterator(old_version, error)) {
      const std::string name = entry.path().filename();
      if (files.count(name) == 0) ::unlink(absl::StrCat(dir, "/", name).c_str());
    }
    fs::remove_all(old_version, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("remove ", old_version.string(), ": ", error.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace flikpay::testing
