// A read-only memory map of a whole file. Pages are faulted in only when a
// tensor is touched, which is what keeps peak memory bounded by the work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "qforge/status.h"

namespace qforge {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tells the kernel a range will not be needed again soon (frees page cache
  // pressure when streaming a model larger than RAM).
  void DropRange(size_t offset, size_t length) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace qforge
