// How the `icp` verbs plug into the command line: each cmd_<verb>.cpp registers itself, so a new
// verb is one new file and main.cpp never changes.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace icp::cli {

/// Exit code for anything the user can fix (bad input, job file or arguments).
inline constexpr int kExitBadInput = 2;

/// Adds the verb's subcommand and options to `app`; returns the action to run when chosen.
using Setup = std::function<std::function<int()>(CLI::App& app)>;

struct Verb {
  int order;  ///< position in `icp --help`
  Setup setup;
};

std::vector<Verb>& verbs();

/// Registers a verb at static-initialization time: `const Registrar r{10, setup};`.
struct Registrar {
  Registrar(int order, Setup setup) { verbs().push_back({order, std::move(setup)}); }
};

/// "1G", "512M", "1.5G", "800000000": bytes, with binary K/M/G/T suffixes (Error naming
/// --memory-limit otherwise).
std::uint64_t parse_size(const std::string& text);

/// 1234567 -> "1,234,567" for progress lines.
std::string with_commas(long long v);

}  // namespace icp::cli
