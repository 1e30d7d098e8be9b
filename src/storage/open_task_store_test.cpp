#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "storage/sqlite/sqlite_test_support.hpp"
#include "storage/task_store.hpp"

namespace conveyor {
namespace {

using sqlite_test::TempDir;

TEST(OpenTaskStore, OpensSqliteFile) {
    TempDir dir;
    const std::filesystem::path file = dir.path() / "conveyor.db";

    auto store = OpenTaskStore("sqlite:" + file.string());

    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Migrate().ok());
    EXPECT_TRUE((*store)->Ping().ok());
    EXPECT_TRUE(std::filesystem::exists(file));
}

TEST(OpenTaskStore, OpensRelativePath) {
    TempDir dir;
    const std::filesystem::path previous = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());

    auto store = OpenTaskStore("sqlite:relative.db");
    const bool created = std::filesystem::exists(dir.path() / "relative.db");
    std::filesystem::current_path(previous);

    ASSERT_TRUE(store.ok()) << store.status().message();
    EXPECT_TRUE(created);
}

TEST(OpenTaskStore, RejectsSqliteWithoutPath) {
    auto store = OpenTaskStore("sqlite:");

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
}

TEST(OpenTaskStore, OpensPostgresqlWithoutConnecting) {
    // A socket directory that does not exist fails at once, with no network.
    for (const char* url : {"postgresql://admin:s3cret@/conveyor?host=/nonexistent-conveyor-dir",
                            "postgres://admin:s3cret@/db?host=/nonexistent-conveyor-dir"}) {
        auto store = OpenTaskStore(url);
        ASSERT_TRUE(store.ok()) << url << ": " << store.status().message();

        const Status migrated = (*store)->Migrate();

        EXPECT_EQ(migrated.code(), StatusCode::kUnavailable) << url;
        EXPECT_EQ(migrated.message().find("s3cret"), std::string::npos) << migrated.message();
    }
}

TEST(OpenTaskStore, RejectsInvalidPostgresqlUrlWithoutEchoingIt) {
    auto store = OpenTaskStore("postgresql://admin:s3cret@/db?no_such_option=1");

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store.status().message().find("s3cret"), std::string::npos)
        << store.status().message();
}

TEST(OpenTaskStore, RejectsUnknownSchemeWithoutEchoingUrl) {
    auto store = OpenTaskStore("mysql://admin:s3cret@localhost/db");

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(store.status().message().find("sqlite:PATH"), std::string::npos)
        << store.status().message();
    EXPECT_EQ(store.status().message().find("s3cret"), std::string::npos)
        << store.status().message();
}

TEST(OpenTaskStore, RejectsEmptyUrl) {
    auto store = OpenTaskStore("");

    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace conveyor
