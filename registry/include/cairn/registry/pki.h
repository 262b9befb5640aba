// The control-plane CA, kept by the registry in its PKI directory
// (ca.crt, ca.key 0600, the directory 0700), created on first start; the
// registry refuses to load a key that others could read.
// Thread-safety: functions are thread-safe; the returned CA is a value.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/common/tls.h"

namespace cairn::registry {

// Loads {pki_dir}/ca.crt and ca.key (checking their modes, see
// CheckSecretModes), or creates them (key 0600, directory 0700).
Result<tls::CertAuthority> LoadOrCreateCa(const std::string& pki_dir);

// The rule for a private key on disk: the key may be read by its owner only
// (no group or other permission bits) and its directory must be 0700.
// FailedPrecondition naming the file, its mode and the chmod that fixes it.
Status CheckSecretModes(const std::string& key_path, mode_t key_mode, const std::string& dir_path,
                        mode_t dir_mode);
// The same for the files on disk (stat).
Status CheckSecretFileModes(const std::string& key_path);

// The certificate's serial number in upper-case hex without leading zeros
// (OpenSSL BN_bn2hex; the form of "serial:<HEX>" revocations).
Result<std::string> CertSerialHex(const std::string& cert_pem);


// A serial as a user may type it ("0a:1b", "serial=0A1B", "a1b") in the
// canonical form: upper-case hex, no separators, no leading zeros.
// InvalidArgument when it is empty, not hex or longer than 40 hex digits.
Result<std::string> NormalizeSerial(std::string_view text);

// Writes {out_dir}/broker.key and {out_dir}/broker.crt (the server
// certificate followed by the CA certificate, so that nodes can pin the CA
// from the chain) and {out_dir}/ca.crt, unless broker.crt already exists and
// was issued by this CA.
Status EnsureBrokerCert(const tls::CertAuthority& ca, const std::string& out_dir,
                        const std::vector<std::string>& sans);

}  // namespace cairn::registry
