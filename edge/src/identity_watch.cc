#include "cairn/edge/identity_watch.h"

#include <spdlog/spdlog.h>

#include "cairn/common/topics.h"

namespace cairn::edge {
namespace {

std::string Hex(int code) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", code);
  return buf;
}

}  // namespace

bool IsIdentityRefusal(const ConnectFailure& f) {
  return f.kind == ConnectFailure::Kind::kRefused && (f.reason_code == 0x87 || f.reason_code == 0x86);
}

std::vector<std::string> RebootstrapAdvice(const Identity& id) {
  const std::string old_dir = id.data_dir + ".old";
  return {
      "to bring this machine back: an operator creates a new bootstrap token (cairnctl token create -w " +
          id.workspace + " > token.txt) and copies it here (chmod 600), then run:",
      "  mv " + id.data_dir + " " + old_dir,
      "  cairn-edge bootstrap --data-dir " + id.data_dir + " --bootstrap-token-file token.txt --name NEW-NAME",
      "and start cairn-edge run again (the name " + id.node + " stays taken in workspace " + id.workspace +
          ", so choose a new one; remove " + old_dir + " once the node runs)",
  };
}

IdentityVerdict ExpiredVerdict(const Identity& id, const CertificateInfo& cert, int64_t now_ms) {
  IdentityVerdict v;
  v.kind = IdentityVerdict::Kind::kExpired;
  v.lines.push_back("the node certificate " + id.cert_file() + " (" + cert.common_name + ", serial " +
                    cert.serial_hex + ") expired on " + FormatUtc(cert.not_after_ms) +
                    " (this machine's clock says " + FormatUtc(now_ms) +
                    "); no broker accepts it and it can no longer be renewed (renewal needs a valid one). The node stops, pipelines included, and exits with code " +
                    std::to_string(kExitIdentityFinished) + " instead of retrying");
  v.lines.push_back("if this machine's clock is wrong, correct it and start cairn-edge again; otherwise");
  for (auto& l : RebootstrapAdvice(id)) v.lines.push_back(std::move(l));
  return v;
}

IdentityWatch::IdentityWatch(Identity identity, CertificateInfo cert, Clock& clock)
    : id_(std::move(identity)), clock_(clock), cert_(std::move(cert)) {}

void IdentityWatch::OnConnected() {
  std::lock_guard lock(mu_);
  if (refusals_ > 0) spdlog::info("connected again after {} refusal(s) by the broker", refusals_);
  refusals_ = 0;
}

void IdentityWatch::OnConnectFailure(const ConnectFailure& f) {
  const int64_t now = clock_.NowMs();
  std::lock_guard lock(mu_);
  if (verdict_) return;
  if (Expired(cert_, now)) {
    verdict_ = ExpiredVerdict(id_, cert_, now);
    return;
  }
  if (!IsIdentityRefusal(f)) return;  // the link, TLS or a timeout: not about who we are
  if (refusals_++ == 0) first_refusal_ms_ = now;
  spdlog::warn("the broker refused this node's certificate ({}; {} of {} in a row before the node gives up)", f.message,
               refusals_, kRefusalsToGiveUp);
  if (refusals_ < kRefusalsToGiveUp) return;
  IdentityVerdict v;
  v.kind = IdentityVerdict::Kind::kRevoked;
  const std::string principal = topics::NodePrincipal(id_.workspace, id_.node);
  v.lines.push_back("the broker refused this node's certificate " + std::to_string(refusals_) +
                    " times in a row since " + FormatUtc(first_refusal_ms_) + " (CONNACK " + Hex(f.reason_code) +
                    " " + (f.reason_code == 0x87 ? "not authorized" : "bad user name or password") + "): " +
                    principal + " or its certificate (serial " + cert_.serial_hex +
                    ") has been revoked (cairnctl node revoke, or its workspace was deleted)");
  v.lines.push_back("pipelines stopped; not retrying (it cannot succeed); exiting with code " +
                    std::to_string(kExitIdentityFinished));
  for (auto& l : RebootstrapAdvice(id_)) v.lines.push_back(std::move(l));
  verdict_ = std::move(v);
}

void IdentityWatch::SetCertificate(const CertificateInfo& cert) {
  std::lock_guard lock(mu_);
  cert_ = cert;
}

std::optional<IdentityVerdict> IdentityWatch::verdict() const {
  std::lock_guard lock(mu_);
  return verdict_;
}

int IdentityWatch::refusals_in_a_row() const {
  std::lock_guard lock(mu_);
  return refusals_;
}

}  // namespace cairn::edge
