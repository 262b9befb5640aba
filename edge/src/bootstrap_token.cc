#include "cairn/edge/bootstrap_token.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>

#include "cairn/common/files.h"

namespace cairn::edge {
namespace {

constexpr char kArgvWarning[] =
    "a bootstrap token on the command line can be read by every user of this machine (ps, "
    "/proc/PID/cmdline); pass it in the environment (CAIRN_EDGE_BOOTSTRAP_TOKEN) or in a file "
    "(--bootstrap-token-file FILE) instead";

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

std::string TokenOnCommandLine(const std::vector<std::string>& args) {
  std::string value;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    for (const char* name : {"token", "bootstrap-token"}) {
      for (const std::string& flag : {std::string("--") + name, std::string("-") + name}) {
        if (a == flag && i + 1 < args.size()) {
          value = args[i + 1];
        } else if (a.rfind(flag + "=", 0) == 0) {
          value = a.substr(flag.size() + 1);
        }
      }
    }
  }
  return value;
}

Result<ChosenToken> ChooseBootstrapToken(const TokenInputs& in) {
  ChosenToken out;
  if (!in.argv.empty()) out.warnings.push_back(kArgvWarning);
  if (!in.file.empty()) {
    auto text = ReadFile(in.file);
    if (!text.ok()) return Error::InvalidArgument("cannot read the bootstrap token file: " + text.error().message);
    out.token = Trimmed(*text);
    if (out.token.empty()) return Error::InvalidArgument("bootstrap token file " + in.file + " is empty");
    out.source = "--bootstrap-token-file " + in.file;
    struct stat st {};
    if (::stat(in.file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
      out.warnings.push_back("bootstrap token file " + in.file + " has mode " + Octal(st.st_mode) +
                             " (other users may read it); chmod 600 " + in.file);
    }
  } else if (!in.env.empty()) {
    out.token = Trimmed(in.env);
    out.source = "CAIRN_EDGE_BOOTSTRAP_TOKEN";
  } else if (!in.argv.empty()) {
    out.token = Trimmed(in.argv);
    out.source = "the command line";
    return out;
  } else if (!in.config.empty()) {
    out.token = Trimmed(in.config);
    out.source = "the config file";
    return out;
  } else {
    return out;
  }
  if (!in.argv.empty() && Trimmed(in.argv) != out.token) {
    out.warnings.push_back("ignoring the bootstrap token on the command line: using the one from " + out.source);
  }
  return out;
}

}  // namespace cairn::edge
