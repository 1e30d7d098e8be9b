#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor::cli {

// Returns whether `name` is one of the client commands: submit, get, list,
// cancel or retry.
bool IsClientCommand(std::string_view name);

// Runs the client command named by argv[1], with argv[0] the program name,
// printing on the process's standard streams. Returns the exit status: 0 on
// success, 1 when the server responded with an error, 2 on a usage error and 3
// when the server cannot be reached.
int RunClientCommand(int argc, char** argv);

// The streams a client command reads and writes.
struct Console {
    std::istream& in;   // read by `submit --file -`
    std::ostream& out;  // the JSON document a command prints
    std::ostream& err;  // errors, the server's problem documents and help on usage errors
};

// Same as RunClientCommand(argc, argv), with args[0] the program name and
// args[1] the command, reading and writing `console` instead of the process's
// standard streams. Options still read their CONVEYOR_* environment variables.
int RunClientCommand(const std::vector<std::string>& args, const Console& console);

}  // namespace conveyor::cli
