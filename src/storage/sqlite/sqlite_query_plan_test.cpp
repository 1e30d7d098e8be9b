#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "core/ids.hpp"
#include "storage/list_bounds.hpp"
#include "storage/sqlite/sqlite_statements.hpp"
#include "storage/sqlite/sqlite_task_store.hpp"
#include "storage/sqlite/sqlite_test_support.hpp"

// Checks with EXPLAIN QUERY PLAN that every query the store runs is an
// index lookup or range scan. A full scan of a table or an index, or a sort
// of the matching rows, fails the test, because its cost grows with the table.
namespace conveyor {
namespace {

using sqlite_test::TempDir;

struct PlanCase {
    std::string name;
    std::string sql;
    std::string index;       // the index the plan must use
    std::string range = "";  // when set, a part of the index range the plan must show
};

std::vector<PlanCase> FixedCases() {
    return {
        {"claim", sqlite::kClaimSql, "tasks_claim"},
        {"select expired", sqlite::kSelectExpiredSql, "tasks_lease_expiry"},
        {"reap requeue", sqlite::kReapRequeueSql, "INTEGER PRIMARY KEY"},
        {"reap fail", sqlite::kReapFailSql, "INTEGER PRIMARY KEY"},
        {"renew leases", sqlite::kRenewLeasesSql, "tasks_lease_owner"},
        {"held leases", sqlite::kSelectHeldLeasesSql, "tasks_lease_owner"},
        {"get", sqlite::kSelectTaskSql, "tasks_task_id"},
        {"get with text", sqlite::kSelectTaskWithTextSql, "tasks_task_id"},
        {"get with text", sqlite::kSelectTaskWithTextSql, "task_texts USING INTEGER PRIMARY KEY"},
        {"claim text", sqlite::kSelectTextSql, "INTEGER PRIMARY KEY"},
        {"statuses", sqlite::kSelectStatusesSql, "tasks_task_id"},
        {"count pending", sqlite::kSelectPendingSql, "tasks_tenant_status_created"},
        {"cancel", sqlite::kCancelSql, "tasks_task_id"},
        {"redrive", sqlite::kRedriveSql, "tasks_task_id"},
        {"complete", sqlite::kCompleteSql, "tasks_task_id"},
        {"fail retry", sqlite::kFailRetrySql, "tasks_task_id"},
        {"fail final", sqlite::kFailFinalSql, "tasks_task_id"},
        {"hand back", sqlite::kHandBackSql, "tasks_task_id"},
        {"idempotency key", sqlite::kSelectIdempotencyKeySql, "PRIMARY KEY"},
        {"meta", sqlite::kSelectMetaSql, "PRIMARY KEY"},
    };
}

// Every list statement the store can build, with the index it should use.
// A resume position sits inside the created_at bounds, as on a deep page.
std::vector<PlanCase> ListCases() {
    constexpr UnixMillis kT0 = 1'750'000'000'000;
    std::vector<PlanCase> cases;
    for (int bits = 0; bits < 64; ++bits) {
        ListQuery query;
        query.tenant = "acme";
        if ((bits & 2) != 0) {
            query.type = "text.analyze";
        }
        if ((bits & 4) != 0) {
            query.created_after = kT0;
        }
        if ((bits & 8) != 0) {
            query.created_before = kT0 + 10'000;
        }
        if ((bits & 16) != 0) {
            query.after = ListPosition{kT0 + 5000, NewUuidV7(kT0 + 5000)};
        }
        query.descending = (bits & 32) != 0;
        const ListQuery tightened = TightenListBounds(query);
        const bool status = (bits & 1) != 0;

        std::string index = "tasks_tenant_created";
        if (status) {
            index = "tasks_tenant_status_created";
        } else if (tightened.type) {
            index = "tasks_tenant_type_created";
        }
        const std::string range = tightened.after ? "(created_at,task_id)" : "";
        cases.push_back({"list shape " + std::to_string(bits),
                         sqlite::ListSql(sqlite::ListShapeOf(tightened, status)), index, range});
    }
    return cases;
}

class QueryPlanTest : public testing::Test {
  protected:
    void SetUp() override {
        path_ = (dir_.path() / "plans.db").string();
        auto store = SqliteTaskStore::Open(SqliteOptions{.path = path_});
        ASSERT_TRUE(store.ok()) << store.status().message();
        ASSERT_TRUE((*store)->Migrate().ok());
        store_ = std::move(*store);
        ASSERT_EQ(sqlite3_open(path_.c_str(), &db_), SQLITE_OK);
    }

    void TearDown() override { sqlite3_close(db_); }

    std::vector<std::string> Plan(const std::string& sql) {
        std::vector<std::string> lines;
        sqlite3_stmt* stmt = nullptr;
        const std::string explain = "EXPLAIN QUERY PLAN " + sql;
        if (sqlite3_prepare_v2(db_, explain.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << "cannot explain: " << sqlite3_errmsg(db_) << "\n" << sql;
            return lines;
        }
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            lines.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3)));
        }
        sqlite3_finalize(stmt);
        return lines;
    }

    void ExpectIndexed(const PlanCase& plan_case) {
        const std::vector<std::string> lines = Plan(plan_case.sql);
        std::string text;
        bool uses_index = false;
        for (const std::string& line : lines) {
            text += "  " + line + "\n";
            uses_index = uses_index || line.find(plan_case.index) != std::string::npos;
        }
        EXPECT_TRUE(uses_index) << plan_case.name << " does not use " << plan_case.index << ":\n"
                                << text;
        if (!plan_case.range.empty()) {
            EXPECT_NE(text.find(plan_case.range), std::string::npos)
                << plan_case.name << " does not start its range at " << plan_case.range << ":\n"
                << text;
        }
        for (const std::string& line : lines) {
            EXPECT_NE(line.rfind("SCAN", 0), 0u) << plan_case.name << " scans:\n" << text;
            EXPECT_EQ(line.find("TEMP B-TREE"), std::string::npos) << plan_case.name << " sorts:\n"
                                                                   << text;
        }
    }

    TempDir dir_;
    std::string path_;
    std::unique_ptr<SqliteTaskStore> store_;
    sqlite3* db_ = nullptr;
};

TEST_F(QueryPlanTest, FixedQueriesUseIndexes) {
    for (const PlanCase& plan_case : FixedCases()) {
        ExpectIndexed(plan_case);
    }
}

TEST_F(QueryPlanTest, ListQueriesAreRangeScans) {
    for (const PlanCase& plan_case : ListCases()) {
        ExpectIndexed(plan_case);
    }
}

// The store never runs ANALYZE, but an operator might, so the plans must
// hold with statistics from a skewed table as well.
TEST_F(QueryPlanTest, PlansHoldAfterAnalyze) {
    constexpr UnixMillis kT0 = 1'750'000'000'000;
    for (int i = 0; i < 1500; ++i) {
        NewTask task;
        task.task_id = NewUuidV7(kT0 + i);
        task.tenant = i % 10 == 0 ? "small" : "large";
        task.type = i % 3 == 0 ? "text.other" : "text.analyze";
        task.params_json = "{}";
        task.text = "t";
        task.created_at = kT0 + i;
        ASSERT_TRUE(store_->Create(task, std::nullopt).ok());
    }
    ASSERT_TRUE(store_->Claim("worker-1", 700, kT0 + 10'000, Millis{30'000}).ok());
    ASSERT_EQ(sqlite3_exec(db_, "ANALYZE", nullptr, nullptr, nullptr), SQLITE_OK);

    for (const PlanCase& plan_case : FixedCases()) {
        ExpectIndexed(plan_case);
    }
    for (const PlanCase& plan_case : ListCases()) {
        ExpectIndexed(plan_case);
    }
}

}  // namespace
}  // namespace conveyor
