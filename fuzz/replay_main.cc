// Corpus replay driver for builds without libFuzzer (g++, or the sanitized
// build): runs LLVMFuzzerTestOneInput once on every file named on the command
// line or found (recursively) in a directory named there. A crash or a failed
// property aborts, so CTest reports the input's path (printed first).
// Thread-safety: single-threaded program.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

int RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replaying %s (%zu bytes)\n", path.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  int failures = 0, files = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> all;
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) all.push_back(e.path());
      }
      std::sort(all.begin(), all.end());
      for (const auto& f : all) failures += RunFile(f), ++files;
    } else {
      failures += RunFile(p), ++files;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "no inputs found in the given paths\n");
    return 1;
  }
  std::fprintf(stderr, "%d inputs replayed\n", files);
  return failures == 0 ? 0 : 1;
}
