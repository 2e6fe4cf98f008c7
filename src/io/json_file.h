// Reading text and JSON files with errors that name the file. Kept in one translation
// unit's worth of includes: callers that need the tree include nlohmann too.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "qforge/status.h"

namespace qforge {

// Parses a JSON file. Errors name the file and what went wrong.
Result<nlohmann::json> ReadJsonFile(const std::string& path);

// A whole file's bytes. `role` says what the file is for in the error
// ("--text file"): "<path>: cannot open <role>: <reason>".
Result<std::string> ReadTextFile(const std::string& path, const std::string& role = "");

}  // namespace qforge
