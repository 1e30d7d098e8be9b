#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "core/status.hpp"
#include "storage/postgres/postgres_connection.hpp"
#include "storage/postgres/postgres_task_store.hpp"
#include "storage/postgres/test_cluster.hpp"

// Helpers shared by the PostgreSQL store tests. One cluster serves the whole
// test binary (started by the first test that needs it, and stopped by a
// GoogleTest global environment after the last test), and every test gets
// its own database.
namespace conveyor::postgres_test {

// Returns the shared cluster, starting it on the first call, or nullptr
// when it failed to start. Call it only from the main test thread.
TestCluster* SharedCluster();

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

// A test with a fresh database of its own, dropped at the end.
class DatabaseTest : public testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    // Opens a store on this test's database and migrates it. Records a
    // failure and returns nullptr when either step fails.
    std::unique_ptr<PostgresTaskStore> OpenStore(int pool_size = 8);

    // Returns a connection of the test's own to its database, for checks
    // that the store does not expose, with application_name conveyor-test.
    // Opened on first use, and again after the server closed it.
    postgres::Connection& Sql();

    // Runs `sql` on Sql() and returns the first column of the first row in
    // PostgreSQL's text form, or "" when there is no row or it is NULL.
    // Records a failure on an error.
    std::string SqlValue(const std::string& sql);

    TestDatabase database_;

  private:
    std::unique_ptr<postgres::Connection> sql_;
};

}  // namespace conveyor::postgres_test
