// Fuzz target: bootstrap tokens, which a user pastes and the registry receives
// from any bootstrap client: "cairn1.<base64url(cairn.v1.TokenPayload)>".
//   - cairn::edge::DecodeToken (the node's decoder) and, for a token it
//     accepts, ParseBrokerUrl on the broker URL inside;
//   - the registry's decoding steps (prefix, 4 KiB limit, Base64UrlDecode,
//     TokenPayload, non-empty id), which live inside its Bootstrap handler;
//   - the encoders' round trips: Base64UrlDecode(Base64UrlEncode(x)) == x and
//     HexDecode(HexEncode(x)) == x, and the decoders on raw input.
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "cairn/common/tls.h"
#include "cairn/edge/identity.h"
#include "cairn/v1/rpc.pb.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  google::protobuf::SetLogHandler(nullptr);  // no "invalid UTF-8" lines per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);

  auto payload = cairn::edge::DecodeToken(text);
  if (payload.ok()) {
    CAIRN_FUZZ_CHECK(payload->ca_sha256().size() == 32, "DecodeToken accepted a token without a CA pin");
    auto hp = cairn::edge::ParseBrokerUrl(payload->broker_url());
    if (hp.ok()) CAIRN_FUZZ_CHECK(hp->second != 0, "ParseBrokerUrl accepted port 0: " + payload->broker_url());
  }
  auto url = cairn::edge::ParseBrokerUrl(text);
  if (url.ok()) CAIRN_FUZZ_CHECK(url->second != 0, "ParseBrokerUrl accepted port 0: " + text);

  // The registry's steps (registry_service.cc, Bootstrap).
  constexpr std::string_view kPrefix = "cairn1.";
  if (text.size() <= 4096 && text.rfind(kPrefix, 0) == 0) {
    auto raw = cairn::tls::Base64UrlDecode(std::string_view(text).substr(kPrefix.size()));
    cairn::v1::TokenPayload p;
    if (raw.ok() && p.ParseFromString(*raw) && !p.id().empty()) (void)p.ShortDebugString();
  }

  // Encoder round trips.
  auto b64 = cairn::tls::Base64UrlDecode(cairn::tls::Base64UrlEncode(text));
  CAIRN_FUZZ_CHECK(b64.ok() && *b64 == text, "base64url round trip");
  auto hex = cairn::tls::HexDecode(cairn::tls::HexEncode(text));
  CAIRN_FUZZ_CHECK(hex.ok() && *hex == text, "hex round trip");
  auto decoded = cairn::tls::HexDecode(text);
  if (decoded.ok()) CAIRN_FUZZ_CHECK(decoded->size() * 2 == text.size(), "hex decode size of " + text);
  (void)cairn::tls::Base64UrlDecode(text);
  return 0;
}
