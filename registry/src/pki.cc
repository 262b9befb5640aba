#include "cairn/registry/pki.h"

#include <spdlog/spdlog.h>

#include "cairn/common/files.h"

namespace cairn::registry {

Result<tls::CertAuthority> LoadOrCreateCa(const std::string& pki_dir) {
  std::string crt = pki_dir + "/ca.crt";
  std::string key = pki_dir + "/ca.key";
  if (FileExists(crt) && FileExists(key)) {
    auto c = ReadFile(crt);
    if (!c.ok()) return c.error();
    auto k = ReadFile(key);
    if (!k.ok()) return k.error();
    auto cn = tls::CertCommonName(*c);
    if (!cn.ok()) return Error::FailedPrecondition(crt + " is not a certificate: " + cn.error().message);
    return tls::CertAuthority{*c, *k};
  }
  if (auto st = MakeDirs(pki_dir, 0700); !st.ok()) return st.error();
  auto ca = tls::CreateCa("Cairn control-plane CA", 3650);
  if (!ca.ok()) return ca.error();
  if (auto st = WriteFileAtomic(key, ca->key_pem, 0600); !st.ok()) return st.error();
  if (auto st = WriteFileAtomic(crt, ca->cert_pem, 0644); !st.ok()) return st.error();
  spdlog::info("created the control-plane CA in {}", pki_dir);
  return *ca;
}

Status EnsureBrokerCert(const tls::CertAuthority& ca, const std::string& out_dir,
                        const std::vector<std::string>& sans) {
  if (auto st = MakeDirs(out_dir, 0755); !st.ok()) return st;
  std::string crt = out_dir + "/broker.crt";
  if (FileExists(crt)) {
    auto existing = ReadFile(crt);
    if (existing.ok() && tls::VerifyCert(ca.cert_pem, *existing).ok()) return OkStatus();
  }
  auto key = tls::GenerateKey();
  if (!key.ok()) return key.error();
  auto cert = tls::IssueServerCert(ca, *key, sans.empty() ? "localhost" : sans.front(), sans, 825);
  if (!cert.ok()) return cert.error();
  // The broker drops privileges to its own user: the key must stay readable
  // by it, so the directory, not the mode, is what keeps it private.
  if (auto st = WriteFileAtomic(out_dir + "/broker.key", *key, 0640); !st.ok()) return st;
  if (auto st = WriteFileAtomic(crt, *cert + ca.cert_pem, 0644); !st.ok()) return st;
  return WriteFileAtomic(out_dir + "/ca.crt", ca.cert_pem, 0644);
}

}  // namespace cairn::registry
