// An output written to a temporary file beside its destination and renamed
// into place only by Commit(): an interrupted or failed run never leaves a
// file that looks complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "qforge/status.h"

namespace qforge {

class OutputFile {
 public:
  static Result<std::unique_ptr<OutputFile>> Create(const std::string& final_path);
  ~OutputFile();  // removes the temporary file unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  Status Write(const void* data, size_t n);
  Status WriteZeros(size_t n);
  uint64_t position() const { return position_; }
  Status Commit();
  const std::string& path() const { return final_path_; }

 private:
  OutputFile() = default;
  std::string final_path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  uint64_t position_ = 0;
  bool committed_ = false;
};

// Removes temporary outputs when the process is interrupted (SIGINT/SIGTERM).
void InstallOutputCleanupHandlers();

// Other paths the handlers remove: files are unlinked, then (empty) folders
// removed. For outputs made of several files, such as a partial checkpoint
// folder and the shards already finished in it.
void RegisterTempPath(const std::string& path);
void UnregisterTempPath(const std::string& path);

// A line the handlers print on stderr when they clean up (e.g. where a
// resumable run's journal is kept); empty: none.
void SetInterruptNote(const std::string& line);

// Removes what a killed qforge process left beside final_path: temporary
// outputs named "<final_path>.qforge-<pid>.tmp" or
// "<final_path>.qforge-partial-<pid>" (a SIGKILL or power cut gives the
// handlers above no chance). A live writer holds an flock on its temporary
// file or folder (LockTempPath), which is what tells it apart: a process id
// alone can be another PID namespace's or another host's.
void RemoveStaleTemps(const std::string& final_path);

// Takes the writer's lock on a temporary file or folder for as long as the
// returned descriptor stays open (-1 when it cannot be taken).
int LockTempPath(const std::string& path);

}  // namespace qforge
