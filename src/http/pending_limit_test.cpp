#include "http/pending_limit.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "core/ids.hpp"
#include "storage/sqlite/sqlite_task_store.hpp"
#include "storage/sqlite/sqlite_test_support.hpp"

namespace conveyor::http {
namespace {

namespace asio = boost::asio;

constexpr Millis kLongInterval{3'600'000};

class PendingLimitTest : public testing::Test {
  protected:
    void SetUp() override {
        auto store =
            SqliteTaskStore::Open(SqliteOptions{.path = (dir_.path() / "tasks.db").string()});
        ASSERT_TRUE(store.ok()) << store.status().message();
        ASSERT_TRUE((*store)->Migrate().ok());
        store_ = std::move(*store);
    }

    void TearDown() override { db_pool_.join(); }

    std::string AddPending(const std::string& tenant) {
        NewTask task;
        task.created_at = NowMillis();
        task.task_id = NewUuidV7(task.created_at);
        task.tenant = tenant;
        task.type = "text.analyze";
        task.params_json = "{}";
        task.text = "words";
        EXPECT_TRUE(store_->Create(task, std::nullopt).ok());
        return task.task_id;
    }

    // Runs one Admit to completion on a private event loop.
    Result<bool> Admit(PendingLimit& limit, const std::string& tenant) {
        asio::io_context io;
        auto work = asio::make_work_guard(io);
        std::optional<Result<bool>> outcome;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                outcome.emplace(co_await limit.Admit(tenant));
                work.reset();
            },
            asio::detached);
        io.run();
        return outcome ? std::move(*outcome) : Result<bool>(Status::Internal("did not finish"));
    }

    bool MustAdmit(PendingLimit& limit, const std::string& tenant) {
        Result<bool> admitted = Admit(limit, tenant);
        EXPECT_TRUE(admitted.ok()) << admitted.status().message();
        return admitted.ok() && *admitted;
    }

    sqlite_test::TempDir dir_;
    std::unique_ptr<SqliteTaskStore> store_;
    asio::thread_pool db_pool_{2};
};

TEST_F(PendingLimitTest, AdmitsUntilBound) {
    AddPending("acme");
    PendingLimit limit(*store_, db_pool_, 3, kLongInterval);

    EXPECT_TRUE(MustAdmit(limit, "acme")) << "1 stored + 1 admitted";
    EXPECT_TRUE(MustAdmit(limit, "acme")) << "1 stored + 2 admitted";
    EXPECT_FALSE(MustAdmit(limit, "acme")) << "the bound of 3 is reached";
}

TEST_F(PendingLimitTest, TenantsCountApart) {
    AddPending("acme");
    PendingLimit limit(*store_, db_pool_, 1, kLongInterval);

    EXPECT_FALSE(MustAdmit(limit, "acme"));
    EXPECT_TRUE(MustAdmit(limit, "beta"));
}

TEST_F(PendingLimitTest, CountsAgainAfterInterval) {
    AddPending("acme");
    const std::string cancelled = AddPending("acme");
    PendingLimit limit(*store_, db_pool_, 2, Millis{0});
    ASSERT_FALSE(MustAdmit(limit, "acme"));

    ASSERT_TRUE(store_->Cancel("acme", cancelled, NowMillis()).ok());

    EXPECT_TRUE(MustAdmit(limit, "acme")) << "a zero interval counts on every submission";
}

// The documented imprecision: within one interval, tasks that left PENDING
// still count.
TEST_F(PendingLimitTest, ReusesCountWithinInterval) {
    const std::string cancelled = AddPending("acme");
    PendingLimit limit(*store_, db_pool_, 1, kLongInterval);
    ASSERT_FALSE(MustAdmit(limit, "acme"));

    ASSERT_TRUE(store_->Cancel("acme", cancelled, NowMillis()).ok());

    EXPECT_FALSE(MustAdmit(limit, "acme"));
}

}  // namespace
}  // namespace conveyor::http
