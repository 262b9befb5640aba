// cairnctl: the operator CLI. See `cairnctl --help`.
#include <iostream>

#include "cairn/ctl/ctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return cairn::ctl::Main(args, std::cout, std::cerr);
}
