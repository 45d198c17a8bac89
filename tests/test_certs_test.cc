#include "tests/support/test_certs.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace flikpay::testing {
namespace {

struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
using CertPtr = std::unique_ptr<X509, X509Free>;

CertPtr ParseCert(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  return CertPtr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// X509_V_OK, or why `cert` does not chain to `ca` for `purpose` (X509_PURPOSE_SSL_SERVER/_CLIENT,
// which also checks the extended key usage).
int Verify(const std::string& ca_path, const std::string& cert_path, int purpose) {
  CertPtr ca = ParseCert(ReadFile(ca_path));
  CertPtr cert = ParseCert(ReadFile(cert_path));
  if (ca == nullptr || cert == nullptr) return -1;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  if (X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1) {
    return -1;
  }
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

std::string CommonName(const X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                     static_cast<size_t>(ASN1_STRING_length(value)));
}

std::vector<std::string> UriSans(const X509* cert) {
  std::vector<std::string> uris;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

std::string Serial(const std::string& cert_path) {
  CertPtr cert = ParseCert(ReadFile(cert_path));
  if (cert == nullptr) return "";
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr), &BN_free);
  char* text = BN_bn2hex(bn.get());
  std::string serial = text == nullptr ? "" : text;
  OPENSSL_free(text);
  return serial;
}

class TestCertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "/test_certs_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    absl::StatusOr<TestCa> ca = TestCa::Create(dir_, "main");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCa>(*std::move(ca));
    absl::StatusOr<TestCa> other = TestCa::Create(dir_, "other");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = std::make_unique<TestCa>(*std::move(other));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::unique_ptr<TestCa> ca_;
  std::unique_ptr<TestCa> other_ca_;
};

TEST_F(TestCertsTest, CaIsACertificateAuthority) {
  CertPtr ca = ParseCert(ca_->cert_pem());
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_NE(X509_get_extension_flags(ca.get()) & EXFLAG_SS, 0u);  // self-signed
  EXPECT_NE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN, 0u);
  EXPECT_EQ(CommonName(ca.get()), "main test CA");
  EXPECT_EQ(Verify(ca_->cert_path(), ca_->cert_path(), X509_PURPOSE_ANY), X509_V_OK);
}

TEST_F(TestCertsTest, ServerCertificateVerifiesAgainstItsCaOnly) {
  absl::StatusOr<CertFiles> server = ca_->IssueServer("server");
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Verify(ca_->cert_path(), server->cert_path, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(other_ca_->cert_path(), server->cert_path, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  // serverAuth only: a server's certificate cannot stand in for a caller's.
  EXPECT_EQ(Verify(ca_->cert_path(), server->cert_path, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_INVALID_PURPOSE);

  CertPtr cert = ParseCert(server->cert_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.org", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);

  const std::string key_pem = server->key_pem();
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);

  struct stat key_stat;
  ASSERT_EQ(::stat(server->key_path.c_str(), &key_stat), 0);
  EXPECT_EQ(key_stat.st_mode & 0777, 0600u);
}

TEST_F(TestCertsTest, ClientCertificateCarriesCommonNameAndSpiffeUri) {
  absl::StatusOr<CertFiles> shop =
      ca_->IssueClient("shop", "shop", "spiffe://flikpay.test/ns/shop/sa/shop");
  ASSERT_TRUE(shop.ok()) << shop.status();
  EXPECT_EQ(Verify(ca_->cert_path(), shop->cert_path, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(Verify(other_ca_->cert_path(), shop->cert_path, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(Verify(ca_->cert_path(), shop->cert_path, X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);

  CertPtr cert = ParseCert(shop->cert_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(CommonName(cert.get()), "shop");
  EXPECT_EQ(UriSans(cert.get()), std::vector<std::string>{"spiffe://flikpay.test/ns/shop/sa/shop"});
}

TEST_F(TestCertsTest, ClientCertificateWithoutUriHasOnlyTheCommonName) {
  absl::StatusOr<CertFiles> legacy = ca_->IssueClient("legacy", "legacy-batch");
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  CertPtr cert = ParseCert(legacy->cert_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(CommonName(cert.get()), "legacy-batch");
  EXPECT_TRUE(UriSans(cert.get()).empty());
  EXPECT_EQ(X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1), -1);
}

TEST_F(TestCertsTest, ReissuingReplacesTheFilesWithANewSerial) {
  absl::StatusOr<CertFiles> first = ca_->IssueServer("server");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string first_serial = Serial(first->cert_path);
  const std::string first_key = first->key_pem();
  absl::StatusOr<CertFiles> second = ca_->IssueServer("server");
  ASSERT_TRUE(second.ok()) << second.status();

  EXPECT_EQ(second->cert_path, first->cert_path);
  EXPECT_EQ(second->key_path, first->key_path);
  EXPECT_FALSE(first_serial.empty());
  EXPECT_NE(Serial(second->cert_path), first_serial);
  EXPECT_NE(second->key_pem(), first_key);
  EXPECT_EQ(Verify(ca_->cert_path(), second->cert_path, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST_F(TestCertsTest, ExpiredLeafIsRefused) {
  LeafSpec spec;
  spec.common_name = "late";
  spec.client_auth = true;
  spec.valid_from = absl::Hours(-2);
  spec.valid_until = absl::Minutes(-1);
  absl::StatusOr<CertFiles> late = ca_->Issue("late", spec);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_EQ(Verify(ca_->cert_path(), late->cert_path, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(TestCertsTest, SecretVolumeSwapsEveryFileAtOnce) {
  const std::string volume = dir_ + "/volume";
  ASSERT_TRUE(WriteSecretVolume(
                  volume, {{"tls.crt", "cert 1"}, {"tls.key", "key 1"}, {"stale", "gone in v2"}})
                  .ok());
  EXPECT_EQ(ReadFile(volume + "/tls.crt"), "cert 1");
  EXPECT_EQ(ReadFile(volume + "/tls.key"), "key 1");
  EXPECT_TRUE(std::filesystem::is_symlink(volume + "/tls.crt"));
  const std::filesystem::path first = std::filesystem::read_symlink(volume + "/..data");

  ASSERT_TRUE(WriteSecretVolume(volume, {{"tls.crt", "cert 2"}, {"tls.key", "key 2"}}).ok());
  EXPECT_EQ(ReadFile(volume + "/tls.crt"), "cert 2");
  EXPECT_EQ(ReadFile(volume + "/tls.key"), "key 2");
  EXPECT_NE(std::filesystem::read_symlink(volume + "/..data"), first);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(volume) / first));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(volume + "/stale")));
  int versions = 0;
  for (const auto& entry : std::filesystem::directory_iterator(volume)) {
    if (entry.path().filename().string().rfind("..version_", 0) == 0) ++versions;
  }
  EXPECT_EQ(versions, 1);

  EXPECT_FALSE(WriteSecretVolume(volume, {{"../escape", "x"}}).ok());
}

// Lets a server with no service of its own start: the builder refuses one without any method
// polled, and the default health service alone does not count.
class NoOtherMethods : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Refuse : public grpc::ServerGenericBidiReactor {
     public:
      Refuse() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")); }
      void OnDone() override { delete this; }
    };
    return new Refuse;
  }
};

// The files are what gRPC itself will be given: a real mutual-TLS handshake proves the key format,
// the SANs the channel checks, and the usages the server checks.
class GrpcHandshakeTest : public TestCertsTest {
 protected:
  void SetUp() override {
    TestCertsTest::SetUp();
    absl::StatusOr<CertFiles> server = ca_->IssueServer("server");
    ASSERT_TRUE(server.ok()) << server.status();
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ca_->cert_pem();
    options.pem_key_cert_pairs.push_back({server->key_pem(), server->cert_pem()});
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port_);
    builder.RegisterCallbackGenericService(&no_other_methods_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    TestCertsTest::TearDown();
  }

  // Dials 127.0.0.1 without a resolver (c-ares, which resolves "localhost", leaves allocations
  // that LeakSanitizer reports); `server_name` is the name the server's certificate must carry.
  grpc::Status HealthCheck(const std::string& server_name, const std::string& root_pem,
                           const CertFiles* client) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = root_pem;
    if (client != nullptr) {
      options.pem_private_key = client->key_pem();
      options.pem_cert_chain = client->cert_pem();
    }
    grpc::ChannelArguments arguments;
    arguments.SetSslTargetNameOverride(server_name);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("ipv4:127.0.0.1:", port_),
                                             grpc::SslCredentials(options), arguments);
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice empty;  // an empty HealthCheckRequest asks after the server as a whole
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                   &response, [&done](grpc::Status status) { done.set_value(status); });
    return done.get_future().get();
  }

  NoOtherMethods no_other_methods_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(GrpcHandshakeTest, ClientOfTheSameCaIsServedByNameAndByAddress) {
  absl::StatusOr<CertFiles> shop = ca_->IssueClient("shop", "shop", "spiffe://flikpay.test/shop");
  ASSERT_TRUE(shop.ok()) << shop.status();
  const grpc::Status by_name = HealthCheck("localhost", ca_->cert_pem(), &*shop);
  EXPECT_TRUE(by_name.ok()) << by_name.error_code() << " " << by_name.error_message();
  const grpc::Status by_address = HealthCheck("127.0.0.1", ca_->cert_pem(), &*shop);
  EXPECT_TRUE(by_address.ok()) << by_address.error_code() << " " << by_address.error_message();
  // The channel does check the name, so the two above passed on the certificate's SANs.
  EXPECT_EQ(HealthCheck("flikpay.example.org", ca_->cert_pem(), &*shop).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcHandshakeTest, ClientOfAnotherCaOrWithoutCertificateIsRefused) {
  absl::StatusOr<CertFiles> intruder = other_ca_->IssueClient("intruder", "shop");
  ASSERT_TRUE(intruder.ok()) << intruder.status();
  EXPECT_EQ(HealthCheck("localhost", ca_->cert_pem(), &*intruder).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(HealthCheck("localhost", ca_->cert_pem(), nullptr).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(GrpcHandshakeTest, ServerOfAnotherCaIsNotTrusted) {
  absl::StatusOr<CertFiles> shop = other_ca_->IssueClient("shop", "shop");
  ASSERT_TRUE(shop.ok()) << shop.status();
  EXPECT_EQ(HealthCheck("localhost", other_ca_->cert_pem(), &*shop).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace flikpay::testing
