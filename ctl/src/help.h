// cairnctl's help texts: the overview (`cairnctl --help`) and one page per
// command group (`cairnctl GROUP --help`). Private to ctl/.
// Thread-safety: constant data.
#pragma once

#include <string>

namespace cairn::ctl {

// The overview: every command and the connection options.
const char* Usage();
// The page for `group` (aliases included), or nullptr if it has none.
const char* GroupHelp(const std::string& group);

}  // namespace cairn::ctl
