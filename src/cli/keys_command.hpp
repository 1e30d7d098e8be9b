#pragma once

namespace conveyor::cli {

// Runs `conveyor keys add --tenant NAME --api-keys-file PATH`, with argv[1]
// "keys": generates an API key for the tenant, appends its entry (key id,
// tenant, salt and hash, never the key) to the file, creating the file with
// mode 0600 when it is missing, and prints the key once on standard output.
// Returns 0 on success, 1 when the file cannot be read, parsed or written,
// and 2 on a usage error.
int RunKeysCommand(int argc, char** argv);

}  // namespace conveyor::cli
