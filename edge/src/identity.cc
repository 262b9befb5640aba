#include "cairn/edge/identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "cairn/common/files.h"
#include "cairn/common/log.h"
#include "cairn/common/mqtt_paho.h"
#include "cairn/common/rpc.h"
#include "cairn/common/tls.h"
#include "cairn/common/topics.h"
#include "cairn/edge/certificate.h"

namespace cairn::edge {
namespace {
constexpr char kTokenPrefix[] = "cairn1.";

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string ErrnoText() { return std::strerror(errno); }

// Makes renames in `dir` durable.
Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Error::Internal("cannot open " + dir + ": " + ErrnoText());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error::Internal("cannot fsync " + dir + ": " + ErrnoText());
  return OkStatus();
}

Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Error::Internal("cannot rename " + from + " to " + to + ": " + ErrnoText());
  }
  return OkStatus();
}

}  // namespace

Status CheckPrivateKeyMode(const std::string& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0) return Error::NotFound("cannot read " + key_file + ": " + ErrnoText());
  if ((st.st_mode & 0077) != 0) {
    return Error::FailedPrecondition("the node's private key " + key_file + " has mode " + Octal(st.st_mode) +
                                     ": other users of this machine may read it. Refusing to start; fix it with "
                                     "`chmod 600 " + key_file + "` (and consider the key exposed if others "
                                     "could read it: bootstrap the node again with a new token)");
  }
  return OkStatus();
}

std::vector<std::string> TightenIdentityFiles(const Identity& id) {
  std::vector<std::string> changed;
  struct stat st {};
  if (::stat(id.data_dir.c_str(), &st) == 0 && (st.st_mode & 0077) != 0 && ::chmod(id.data_dir.c_str(), 0700) == 0) {
    changed.push_back(id.data_dir);
  }
  for (const auto& f : {id.cert_file(), id.ca_file(), id.data_dir + "/identity.yaml"}) {
    if (::stat(f.c_str(), &st) == 0 && (st.st_mode & 0077) != 0 && ::chmod(f.c_str(), 0600) == 0) {
      changed.push_back(f);
    }
  }
  return changed;
}

Status StoreRenewedIdentity(const Identity& id, const std::string& key_pem, const std::string& cert_pem) {
  const std::string key_next = id.key_file() + ".next";
  const std::string cert_next = id.cert_file() + ".next";
  if (auto st = WriteFileAtomic(key_next, key_pem, 0600); !st.ok()) return st;
  if (auto st = WriteFileAtomic(cert_next, cert_pem, 0600); !st.ok()) {
    ::unlink(key_next.c_str());
    return st;
  }
  // Commit point passed: both halves of the new pair are on disk.
  if (auto st = Rename(key_next, id.key_file()); !st.ok()) return st;
  if (auto st = Rename(cert_next, id.cert_file()); !st.ok()) return st;
  return SyncDir(id.data_dir);
}

Result<std::string> RecoverRenewedIdentity(const std::string& data_dir) {
  const std::string key = data_dir + "/node.key";
  const std::string cert = data_dir + "/node.crt";
  const bool key_next = FileExists(key + ".next");
  const bool cert_next = FileExists(cert + ".next");
  if (!key_next && !cert_next) return std::string();
  if (!cert_next) {
    ::unlink((key + ".next").c_str());
    return std::string("discarded an unfinished certificate renewal (" + key + ".next without a certificate)");
  }
  auto new_cert = ReadFile(cert + ".next");
  auto new_key = ReadFile(key_next ? key + ".next" : key);
  if (!new_cert.ok() || !new_key.ok() || !CheckKeyMatchesCertificate(*new_key, *new_cert).ok()) {
    ::unlink((cert + ".next").c_str());
    if (key_next) ::unlink((key + ".next").c_str());
    return std::string("discarded a renewed certificate that does not match its key (" + cert + ".next)");
  }
  if (key_next) {
    if (auto st = Rename(key + ".next", key); !st.ok()) return st.error();
  }
  if (auto st = Rename(cert + ".next", cert); !st.ok()) return st.error();
  if (auto st = SyncDir(data_dir); !st.ok()) return st.error();
  return std::string("completed a certificate renewal that was interrupted (" + cert + " replaced)");
}

bool HasIdentity(const std::string& data_dir) { return FileExists(data_dir + "/identity.yaml"); }

Result<Identity> LoadIdentity(const std::string& data_dir) {
  auto text = ReadFile(data_dir + "/identity.yaml");
  if (!text.ok()) {
    return Error::NotFound("no identity in " + data_dir +
                           " (bootstrap first: cairn-edge bootstrap --token TOKEN)");
  }
  Identity id;
  id.data_dir = data_dir;
  try {
    YAML::Node y = YAML::Load(*text);
    id.workspace = y["workspace"].as<std::string>("");
    id.node = y["node"].as<std::string>("");
    id.broker_url = y["broker_url"].as<std::string>("");
    if (y["labels"]) {
      for (const auto& kv : y["labels"]) id.labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
  } catch (const std::exception& e) {
    return Error::InvalidArgument(data_dir + "/identity.yaml is corrupt: " + e.what());
  }
  if (id.workspace.empty() || id.node.empty() || id.broker_url.empty()) {
    return Error::InvalidArgument(data_dir + "/identity.yaml is incomplete");
  }
  for (const auto& f : {id.key_file(), id.cert_file(), id.ca_file()}) {
    if (!FileExists(f)) return Error::NotFound(f + " is missing; bootstrap again");
  }
  return id;
}

Result<v1::TokenPayload> DecodeToken(const std::string& token) {
  std::string t = token;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  if (t.rfind(kTokenPrefix, 0) != 0) return Error::InvalidArgument("not a Cairn bootstrap token (expected cairn1.…)");
  auto raw = tls::Base64UrlDecode(t.substr(sizeof(kTokenPrefix) - 1));
  v1::TokenPayload p;
  if (!raw.ok() || !p.ParseFromString(*raw) || p.broker_url().empty() || p.ca_sha256().size() != 32) {
    return Error::InvalidArgument("bootstrap token is damaged (copy it again)");
  }
  return p;
}

Result<std::pair<std::string, uint16_t>> ParseBrokerUrl(const std::string& url) {
  auto pos = url.find("://");
  if (pos == std::string::npos) return Error::InvalidArgument("broker URL \"" + url + "\" has no scheme");
  std::string rest = url.substr(pos + 3);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return Error::InvalidArgument("broker URL \"" + url + "\" has no port");
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    int port = std::stoi(rest.substr(colon + 1));
    if (port <= 0 || port > 65535) throw std::out_of_range("port");
    return std::make_pair(host, static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return Error::InvalidArgument("broker URL \"" + url + "\" has a bad port");
  }
}

std::string DefaultNodeName() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  std::string out;
  for (char c : std::string(buf)) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::isalnum(static_cast<unsigned char>(l))) {
      out += l;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= 63) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "node" : out;
}

Result<Identity> Bootstrap(const BootstrapOptions& o) {
  if (HasIdentity(o.data_dir)) {
    return Error::AlreadyExists(o.data_dir + " already holds an identity; use another --data-dir");
  }
  auto payload = DecodeToken(o.token);
  if (!payload.ok()) return payload.error();
  std::string name = o.name.empty() ? DefaultNodeName() : o.name;
  if (auto st = topics::ValidateName("node", name); !st.ok()) return st.error();
  if (auto st = ValidateLabels(o.labels); !st.ok()) return st.error();
  auto hp = ParseBrokerUrl(payload->broker_url());
  if (!hp.ok()) return hp.error();

  if (auto st = MakeDirs(o.data_dir, 0700); !st.ok()) return st.error();
  ::chmod(o.data_dir.c_str(), 0700);

  // 1. Trust: the CA is whatever certificate in the broker's chain matches
  //    the pin in the token.
  auto ca = tls::FetchPinnedCa(hp->first, hp->second, payload->ca_sha256(), o.timeout_s * 1000);
  if (!ca.ok()) return ca.error();
  std::string ca_file = o.data_dir + "/ca.crt";
  if (auto st = WriteFileAtomic(ca_file, *ca, 0600); !st.ok()) return st.error();

  // 2. Key pair made here; only the CSR leaves the node.
  auto key = tls::GenerateKey();
  if (!key.ok()) return key.error();
  auto csr = tls::MakeCsr(*key, name);
  if (!csr.ok()) return csr.error();

  // 3. Ask the registry, over the broker's bootstrap identity.
  MqttOptions mo;
  mo.uri = payload->broker_url();
  mo.client_id = RandomClientId("bootstrap");
  mo.username = "bootstrap";
  mo.ca_file = ca_file;
  mo.connect_timeout_s = o.timeout_s;
  auto client = MakePahoMqttClient(mo);
  RpcClient rpc(*client);
  client->SetMessageHandler([&](const MqttMessage& m) { rpc.OnMessage(m); });
  if (auto st = client->Connect(); !st.ok()) return st.error();
  if (auto st = rpc.Start(); !st.ok()) return st.error();
  v1::BootstrapRequest req;
  req.set_token(o.token);
  req.set_node_name(name);
  for (const auto& [k, v] : o.labels) (*req.mutable_labels())[k] = v;
  req.set_csr_pem(*csr);
  req.set_agent_version(o.agent_version);
  auto resp = rpc.Call<v1::BootstrapResponse>("registry", "Bootstrap", req, std::chrono::seconds(o.timeout_s));
  client->Disconnect();
  if (!resp.ok()) return resp.error();
  if (auto st = tls::VerifyCert(*ca, resp->certificate_pem()); !st.ok()) {
    return Error::Internal("the registry returned a certificate the pinned CA did not sign: " + st.error().message);
  }

  // 4. Write key, certificate, then identity.yaml last (the commit point).
  if (auto st = WriteFileAtomic(o.data_dir + "/node.key", *key, 0600); !st.ok()) return st.error();
  if (auto st = WriteFileAtomic(o.data_dir + "/node.crt", resp->certificate_pem(), 0600); !st.ok()) return st.error();
  Identity id;
  id.data_dir = o.data_dir;
  id.workspace = resp->workspace();
  id.node = resp->node_name();
  id.broker_url = resp->broker_url();
  id.labels = Labels(resp->labels().begin(), resp->labels().end());
  YAML::Emitter y;
  y << YAML::BeginMap << YAML::Key << "workspace" << YAML::Value << id.workspace << YAML::Key << "node"
    << YAML::Value << id.node << YAML::Key << "broker_url" << YAML::Value << id.broker_url << YAML::Key
    << "labels" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : id.labels) y << YAML::Key << k << YAML::Value << v;
  y << YAML::EndMap << YAML::EndMap;
  if (auto st = WriteFileAtomic(o.data_dir + "/identity.yaml", std::string(y.c_str()) + "\n", 0600); !st.ok()) {
    return st.error();
  }
  spdlog::info("bootstrapped as {}/{} (token {})", id.workspace, id.node, RedactToken(o.token));
  return id;
}

}  // namespace cairn::edge
