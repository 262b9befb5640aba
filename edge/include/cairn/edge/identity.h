// A node's identity in its data dir, and bootstrap: turning a one-time token
// into that identity.
//
// Data dir layout (directory 0700, every file 0600):
//   node.key       private key, generated here and never sent anywhere
//   node.crt       certificate signed by the control-plane CA (CN node:{ws}:{node})
//   ca.crt         the control-plane CA, pinned by the token
//   identity.yaml  workspace, node name, broker URL, labels (written last: its
//                  presence means bootstrap completed)
//   node.key.next, node.crt.next
//                  a renewed pair on its way in (see StoreRenewedIdentity)
// Thread-safety: functions are thread-safe; they touch only the given dir.
#pragma once

#include <string>
#include <vector>

#include "cairn/common/result.h"
#include "cairn/common/selector.h"
#include "cairn/v1/rpc.pb.h"

namespace cairn::edge {

struct Identity {
  std::string data_dir;
  std::string workspace;
  std::string node;
  std::string broker_url;  // mutual-TLS listener
  Labels labels;

  std::string key_file() const { return data_dir + "/node.key"; }
  std::string cert_file() const { return data_dir + "/node.crt"; }
  std::string ca_file() const { return data_dir + "/ca.crt"; }
};

bool HasIdentity(const std::string& data_dir);
Result<Identity> LoadIdentity(const std::string& data_dir);

// Decodes "cairn1.<base64url(TokenPayload)>" (no network).
Result<v1::TokenPayload> DecodeToken(const std::string& token);

// "ssl://host:port" -> host, port.
Result<std::pair<std::string, uint16_t>> ParseBrokerUrl(const std::string& url);

struct BootstrapOptions {
  std::string token;
  std::string name;  // empty: the host name
  Labels labels;
  std::string data_dir;
  std::string agent_version;
  int timeout_s = 30;
};

// Fetches and pins the CA, makes a key and CSR, asks the registry (over the
// broker) to sign it, and writes the identity. Fails if one already exists.
Result<Identity> Bootstrap(const BootstrapOptions& options);

// Refuses a private key that anyone but its owner may access (any group or
// other permission bit), naming the file, its mode and the fix.
Status CheckPrivateKeyMode(const std::string& key_file);

// Makes the data dir 0700 and the identity files (certificate, CA,
// identity.yaml) 0600 where they are looser (data dirs bootstrapped by older
// versions). Returns the paths it changed.
std::vector<std::string> TightenIdentityFiles(const Identity& identity);

// Replaces the node's key and certificate with a renewed pair so that a crash
// at any moment leaves a matching pair: both are first written (fsynced, 0600)
// as node.key.next and node.crt.next -- node.crt.next is the commit point --
// then renamed over node.key and node.crt.
Status StoreRenewedIdentity(const Identity& identity, const std::string& key_pem, const std::string& cert_pem);

// Finishes a StoreRenewedIdentity that a crash interrupted (node.crt.next
// present and matching its key: rename) or discards it (an incomplete or
// mismatched pair). Call before LoadIdentity. Returns what it did ("" when
// there was nothing to do).
Result<std::string> RecoverRenewedIdentity(const std::string& data_dir);

// A DNS-label version of this machine's host name.
std::string DefaultNodeName();

}  // namespace cairn::edge
