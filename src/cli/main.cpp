// icp command line: owns options, timing and I/O; the library owns the algorithms.
#include <CLI/CLI.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"icp: Ideal Customer Profile engine"};
  app.set_version_flag("--version", std::string("icp ") + ICP_VERSION);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
