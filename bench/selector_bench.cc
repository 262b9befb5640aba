// cairn-bench-selector: how fast selectors parse and match, in process.
//   cairn-bench-selector [NODES]   (default 100000)
// Prints ns per parse and per match over a synthetic fleet whose labels look
// like the demo's (env, region, role, datacenter, canary).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cairn/common/selector.h"

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  size_t nodes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  if (nodes == 0) nodes = 100000;
  std::mt19937 rng(42);
  const char* envs[] = {"production", "staging", "dev"};
  const char* regions[] = {"us-east-1", "eu-west-1", "ap-south-1", "us-west-2"};
  const char* roles[] = {"log-processor", "gateway", "collector"};
  std::vector<cairn::Labels> fleet(nodes);
  for (auto& l : fleet) {
    l["env"] = envs[rng() % 3];
    l["region"] = regions[rng() % 4];
    l["role"] = roles[rng() % 3];
    l["datacenter"] = "dc-" + std::to_string(rng() % 20);
    if (rng() % 10 == 0) l["canary"] = "true";
  }
  const std::vector<std::string> selectors = {
      "env=production",
      "env=production,role=log-processor",
      "env=production,region in (us-east-1,eu-west-1),role!=gateway,canary",
      "region notin (ap-south-1),!canary,datacenter",
  };
  std::printf("fleet: %zu nodes\n", nodes);
  for (const auto& text : selectors) {
    constexpr int kParses = 20000;
    auto t0 = Clock::now();
    cairn::Selector sel;
    for (int i = 0; i < kParses; ++i) {
      auto s = cairn::Selector::Parse(text);
      if (!s.ok()) {
        std::fprintf(stderr, "bad selector %s: %s\n", text.c_str(), s.error().message.c_str());
        return 1;
      }
      sel = *s;
    }
    auto t1 = Clock::now();
    size_t matched = 0;
    for (const auto& l : fleet) matched += sel.Matches(l);
    auto t2 = Clock::now();
    double parse_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / kParses;
    double match_ns = std::chrono::duration<double, std::nano>(t2 - t1).count() / static_cast<double>(nodes);
    std::printf("%-70s parse %8.0f ns  match %6.0f ns/node  matched %zu\n", text.c_str(), parse_ns, match_ns,
                matched);
  }
  return 0;
}
