#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>

#include "core/status.hpp"

// Helpers shared by the SQLite store tests.
namespace conveyor::sqlite_test {

// A fresh directory under the system temporary directory, removed with
// everything in it when the object goes away.
class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "conveyor-storage-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            ADD_FAILURE() << "mkdtemp failed for " << pattern;
        }
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// Returns the value of `result`, or records a failure naming `operation`
// and returns a default value so that the test can go on to its own checks.
template <typename T>
T Must(Result<T> result, const char* operation) {
    if (!result.ok()) {
        ADD_FAILURE() << operation << " failed: " << result.status().message();
        return T{};
    }
    return std::move(result).value();
}

}  // namespace conveyor::sqlite_test
