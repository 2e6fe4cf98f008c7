#include "io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace qforge {

Result<std::string> ReadTextFile(const std::string& path, const std::string& role) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": cannot open" + (role.empty() ? "" : " " + role) + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<nlohmann::json> ReadJsonFile(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::Error(path + ": invalid JSON: " + e.what());
  }
}

}  // namespace qforge
