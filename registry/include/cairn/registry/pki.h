// The control-plane CA, kept by the registry in its PKI directory
// (ca.crt, ca.key 0600), created on first start.
// Thread-safety: functions are thread-safe; the returned CA is a value.
#pragma once

#include <string>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/common/tls.h"

namespace cairn::registry {

Result<tls::CertAuthority> LoadOrCreateCa(const std::string& pki_dir);

// Writes {out_dir}/broker.key and {out_dir}/broker.crt (the server
// certificate followed by the CA certificate, so that nodes can pin the CA
// from the chain) and {out_dir}/ca.crt, unless broker.crt already exists and
// was issued by this CA.
Status EnsureBrokerCert(const tls::CertAuthority& ca, const std::string& out_dir,
                        const std::vector<std::string>& sans);

}  // namespace cairn::registry
