#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/ids.hpp"
#include "storage/list_bounds.hpp"
#include "storage/postgres/postgres_statements.hpp"
#include "storage/postgres/postgres_test_support.hpp"

// Checks with EXPLAIN that each statement the store runs reads through the
// index meant for it, on a table with enough rows and fresh statistics that
// a sequential scan would be the planner's choice if the index did not fit.
// Each statement is planned twice: with its parameters (a custom plan) and
// as a prepared statement's generic plan, which PostgreSQL may switch to
// after five runs.
namespace conveyor {
namespace {

constexpr UnixMillis kT0 = 1'750'000'000'000;

struct PlanCase {
    std::string name;
    std::string sql;
    std::vector<std::string> arguments;  // SQL literals, one per parameter
    // Each entry must appear in the plan; "a|b" accepts either index.
    std::vector<std::string> indexes;
    bool sort_allowed = false;  // a Sort node over the rows found
    bool prepared = true;       // the store prepares it, so its generic plan counts too
    // When set, an "Index Cond:" line must contain it.
    std::string index_condition = "";
};

// Returns true when `plan` reads through `index`, or one of the indexes
// that `index` lists with "|", by any kind of index scan.
bool UsesIndex(const std::string& plan, const std::string& index) {
    std::size_t start = 0;
    while (start <= index.size()) {
        const std::size_t end = std::min(index.find('|', start), index.size());
        const std::string name = index.substr(start, end - start);
        if (plan.find(" using " + name + " on ") != std::string::npos ||
            plan.find("Bitmap Index Scan on " + name + "\n") != std::string::npos) {
            return true;
        }
        start = end + 1;
    }
    return false;
}

// Returns true when some "Index Cond:" line of `plan` contains `condition`.
bool HasIndexCondition(const std::string& plan, const std::string& condition) {
    std::size_t line_start = 0;
    while (line_start < plan.size()) {
        const std::size_t line_end = std::min(plan.find('\n', line_start), plan.size());
        const std::string line = plan.substr(line_start, line_end - line_start);
        if (line.find("Index Cond:") != std::string::npos &&
            line.find(condition) != std::string::npos) {
            return true;
        }
        line_start = line_end + 1;
    }
    return false;
}

std::string Literal(std::string_view text) {
    return "'" + std::string(text) + "'";
}

// The writes of one leased task that worker-1 holds: each is one index entry
// long, in the primary key or in the owner's leases, and its condition
// names the task.
std::vector<PlanCase> FencedWriteCases(const std::string& id, const std::string& now) {
    const std::string owner = "'worker-1'";
    const std::vector<std::string> fence = {"tasks_pkey|tasks_lease_owner"};
    return {
        {"complete",
         postgres::kComplete.sql,
         {id, owner, "1", "'{}'", now},
         fence,
         false,
         true,
         "task_id = "},
        {"fail retry",
         postgres::kFailRetry.sql,
         {id, owner, "1", "'c'", "'m'", now, now},
         fence,
         false,
         true,
         "task_id = "},
        {"fail final",
         postgres::kFailFinal.sql,
         {id, owner, "1", "'c'", "'m'", now},
         fence,
         false,
         true,
         "task_id = "},
        {"hand back",
         postgres::kHandBack.sql,
         {id, owner, "1", now},
         fence,
         false,
         true,
         "task_id = "},
    };
}

class PostgresQueryPlanTest : public postgres_test::DatabaseTest {
  protected:
    void SetUp() override {
        DatabaseTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        store_ = OpenStore();
        ASSERT_NE(store_, nullptr);
        Populate();
    }

    void TearDown() override {
        store_.reset();
        DatabaseTest::TearDown();
    }

    // 40,000 tasks of 20 tenants, mostly finished, as in a long-running
    // service: 1 % PENDING, 1 % PROCESSING with leases of 7 owners.
    void Populate() {
        const std::string t0 = std::to_string(kT0);
        const Result<postgres::QueryResult> inserted = Sql().ExecuteScript(
            "INSERT INTO tasks (task_id, created_at, updated_at, eligible_at, text_bytes,"
            " attempts, max_attempts, tenant, type, status, params_json, finished_at,"
            " lease_expires_at, lease_owner)"
            " SELECT gen_random_uuid(), " +
            t0 + " + i, " + t0 + " + i, " + t0 +
            " + i, 5, 1, 3, 'tenant-' || (i % 20),"
            " CASE WHEN i % 2 = 0 THEN 'text.analyze' ELSE 'text.other' END,"
            " CASE WHEN i % 100 = 0 THEN 'PENDING' WHEN i % 100 = 1 THEN 'PROCESSING'"
            " WHEN i % 3 = 0 THEN 'FAILED' WHEN i % 7 = 0 THEN 'CANCELLED' ELSE 'COMPLETED' END,"
            " '{}', CASE WHEN i % 100 > 1 THEN " +
            t0 + " + i + 10 END, CASE WHEN i % 100 = 1 THEN " + t0 +
            " + i + 30000 END,"
            " CASE WHEN i % 100 = 1 THEN 'worker-' || (i % 7) END"
            " FROM generate_series(1, 40000) AS i;"
            "INSERT INTO task_texts (task_id, text) SELECT task_id, '\\x776f726473' FROM tasks;"
            "INSERT INTO idempotency_keys (tenant, idempotency_key, request_hash, task_id,"
            " created_at) SELECT tenant, 'key-' || task_id, 'hash', task_id, created_at"
            " FROM tasks;"
            "ANALYZE");
        ASSERT_TRUE(inserted.ok()) << inserted.status().message();
        sample_id_ = SqlValue("SELECT task_id FROM tasks LIMIT 1");
    }

    // Returns the plan as text, with one PREPARE per call under a fresh name.
    std::string Explain(const PlanCase& plan_case, bool generic) {
        const std::string name = "plan_" + std::to_string(++prepared_);
        std::string arguments;
        for (const std::string& argument : plan_case.arguments) {
            arguments += (arguments.empty() ? "" : ", ") + argument;
        }
        const std::string mode = generic ? "force_generic_plan" : "force_custom_plan";
        const Result<postgres::QueryResult> prepared = Sql().ExecuteScript(
            "SET plan_cache_mode = " + mode + "; PREPARE " + name + " AS " + plan_case.sql);
        if (!prepared.ok()) {
            ADD_FAILURE() << plan_case.name << ": " << prepared.status().message();
            return "";
        }
        const std::string execute =
            "EXECUTE " + name + (arguments.empty() ? "" : "(" + arguments + ")");
        const Result<postgres::QueryResult> rows =
            Sql().ExecuteScript("EXPLAIN (COSTS OFF) " + execute);
        if (!rows.ok()) {
            ADD_FAILURE() << plan_case.name << ": " << rows.status().message();
            return "";
        }
        std::string plan;
        for (int row = 0; row < rows->rows(); ++row) {
            plan += rows->Text(row, 0) + "\n";
        }
        return plan;
    }

    void Check(const PlanCase& plan_case) {
        for (const bool generic : {false, true}) {
            if (generic && !plan_case.prepared) {
                continue;
            }
            const std::string plan = Explain(plan_case, generic);
            const std::string label =
                plan_case.name + (generic ? " (generic plan)" : " (custom plan)");
            for (const std::string& index : plan_case.indexes) {
                EXPECT_TRUE(UsesIndex(plan, index)) << label << " should use " << index << ":\n"
                                                    << plan;
            }
            if (!plan_case.index_condition.empty()) {
                EXPECT_TRUE(HasIndexCondition(plan, plan_case.index_condition))
                    << label << " should look up " << plan_case.index_condition << ":\n"
                    << plan;
            }
            EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << label << ":\n" << plan;
            if (!plan_case.sort_allowed) {
                EXPECT_EQ(plan.find("Sort"), std::string::npos) << label << ":\n" << plan;
            }
        }
    }

    std::unique_ptr<PostgresTaskStore> store_;
    std::string sample_id_;
    int prepared_ = 0;
};

TEST_F(PostgresQueryPlanTest, FixedStatementsUseTheirIndexes) {
    const std::string id = Literal(sample_id_);
    const std::string now = std::to_string(kT0 + 20'000);
    const std::string ids = Literal("{" + sample_id_ + "}");
    const std::vector<PlanCase> cases = {
        // The final Sort orders only the claimed rows, at most `limit`.
        {"claim",
         postgres::kClaim.sql,
         {"'w'", now, now, "16"},
         {"tasks_claim", "task_texts_pkey"},
         true},
        {"select expired", postgres::kSelectExpired.sql, {now, "100"}, {"tasks_lease_expiry"}},
        // The reaper's writes find their rows among the expired leases, by
        // primary key or by (owner, task_id), whichever the planner
        // estimates cheaper.
        {"reap requeue",
         postgres::kReapRequeue.sql,
         {now, "'m'", ids, "'{w}'", "'{1}'", Literal("{" + now + "}")},
         {"tasks_lease_expiry|tasks_pkey|tasks_lease_owner"}},
        {"reap fail",
         postgres::kReapFail.sql,
         {now, "'m'", ids, "'{w}'", "'{1}'"},
         {"tasks_lease_expiry|tasks_pkey|tasks_lease_owner"}},
        // Rows are locked in task_id order, so a sort of the owner's rows is expected.
        {"lock held leases",
         postgres::kLockHeldLeases.sql,
         {"'worker-1'"},
         {"tasks_lease_owner"},
         true},
        {"renew leases", postgres::kRenewLeases.sql, {"'worker-1'", now}, {"tasks_lease_owner"}},
        {"held leases", postgres::kSelectHeldLeases.sql, {"'worker-1'"}, {"tasks_lease_owner"}},
        {"get", postgres::kSelectTask.sql, {id, "'tenant-1'"}, {"tasks_pkey"}},
        {"get with text",
         postgres::kSelectTaskWithText.sql,
         {id, "'tenant-1'"},
         {"tasks_pkey", "task_texts_pkey"}},
        {"statuses", postgres::kSelectStatuses.sql, {ids}, {"tasks_pkey"}},
        {"count pending",
         postgres::kCountPending.sql,
         {"'tenant-1'", "100"},
         {"tasks_tenant_status_created"}},
        {"cancel", postgres::kCancel.sql, {id, "'tenant-1'", now}, {"tasks_pkey"}},
        {"redrive", postgres::kRedrive.sql, {id, "'tenant-1'", now}, {"tasks_pkey"}},
        // The batch locks its rows in task_id order first: a sort of the
        // batch's rows, found by primary key.
        {"complete batch",
         postgres::kCompleteBatch.sql,
         {ids, "'{worker-1}'", "'{1}'", R"('{"{}"}')", now},
         {"tasks_pkey"},
         true},
        {"idempotency key",
         postgres::kSelectKey.sql,
         {"'tenant-1'", "'key-1'"},
         {"idempotency_keys_pkey", "tasks_pkey"}},
        {"prune",
         postgres::kPrune.sql,
         {std::to_string(kT0 + 1000), "100"},
         {"tasks_finished", "idempotency_keys_task", "task_texts_pkey", "tasks_pkey"},
         false,
         false},
    };
    // The meta table has one row, which a sequential scan reads fastest, so
    // its lookup is not checked.
    for (const PlanCase& plan_case : cases) {
        Check(plan_case);
    }
    for (const PlanCase& plan_case : FencedWriteCases(id, now)) {
        Check(plan_case);
    }
}

// Every list statement the store can build, with the index it should use.
// A resume position sits inside the created_at bounds, as on a deep page.
TEST_F(PostgresQueryPlanTest, ListPagesAreIndexRangeScans) {
    for (int bits = 0; bits < 64; ++bits) {
        ListQuery query;
        query.tenant = "tenant-3";
        query.limit = 20;
        if ((bits & 2) != 0) {
            query.type = "text.analyze";
        }
        if ((bits & 4) != 0) {
            query.created_after = kT0;
        }
        if ((bits & 8) != 0) {
            query.created_before = kT0 + 30'000;
        }
        if ((bits & 16) != 0) {
            query.after = ListPosition{kT0 + 15'000, NewUuidV7(kT0 + 15'000)};
        }
        query.descending = (bits & 32) != 0;
        const ListQuery tightened = TightenListBounds(query);
        const std::optional<TaskStatus> status =
            (bits & 1) != 0 ? std::optional(TaskStatus::kFailed) : std::nullopt;
        const postgres::ListStatement list = postgres::BuildListStatement(tightened, status);

        std::string index = "tasks_tenant_created";
        if (status) {
            index = "tasks_tenant_status_created";
        } else if (tightened.type) {
            index = "tasks_tenant_type_created";
        }
        // The statement's parameters, in order, as literals.
        std::vector<std::string> arguments = {Literal(tightened.tenant)};
        if (status) {
            arguments.push_back(Literal(ToString(*status)));
        }
        if (tightened.type) {
            arguments.push_back(Literal(*tightened.type));
        }
        if (tightened.created_after) {
            arguments.push_back(std::to_string(*tightened.created_after));
        }
        if (tightened.created_before) {
            arguments.push_back(std::to_string(*tightened.created_before));
        }
        if (tightened.after) {
            arguments.push_back(std::to_string(tightened.after->created_at));
            arguments.push_back(Literal(tightened.after->task_id));
        }
        arguments.push_back("21");

        Check(PlanCase{list.statement.name + " (bits " + std::to_string(bits) + ")",
                       list.statement.sql,
                       arguments,
                       {index},
                       false,
                       false});
    }
}

// Statistics gathered while almost nothing ran, then 30,000 claims at once:
// a write to one task must still read one index entry. The planner once
// filtered every lease per completion through the lease expiry index, which
// the statistics showed as empty.
TEST_F(PostgresQueryPlanTest, OneTaskWritesSurviveStaleStatistics) {
    const std::string t0 = std::to_string(kT0);
    const Result<postgres::QueryResult> claimed = Sql().ExecuteScript(
        "ALTER TABLE tasks SET (autovacuum_enabled = off);"
        "UPDATE tasks SET status = 'FAILED', lease_owner = NULL, lease_expires_at = NULL,"
        " finished_at = " +
        t0 +
        " WHERE status = 'PROCESSING';"
        "UPDATE tasks SET status = 'COMPLETED' WHERE status IN ('FAILED', 'CANCELLED');"
        "ANALYZE tasks;"
        "UPDATE tasks SET status = 'PROCESSING', lease_owner = 'worker-1', attempts = 1,"
        " lease_expires_at = " +
        t0 +
        " + 60000, finished_at = NULL"
        " WHERE task_id IN (SELECT task_id FROM tasks ORDER BY created_at LIMIT 30000);"
        "UPDATE tasks SET status = 'FAILED' WHERE task_id IN (SELECT task_id FROM tasks"
        " WHERE status = 'COMPLETED' ORDER BY created_at LIMIT 5000)");
    ASSERT_TRUE(claimed.ok()) << claimed.status().message();
    const std::string id =
        Literal(SqlValue("SELECT task_id FROM tasks WHERE status = 'PROCESSING' LIMIT 1"));
    const std::string failed =
        Literal(SqlValue("SELECT task_id FROM tasks WHERE status = 'FAILED' LIMIT 1"));
    const std::string now = std::to_string(kT0 + 20'000);
    const std::vector<PlanCase> cases = {
        {"redrive",
         postgres::kRedrive.sql,
         {failed, "'tenant-1'", now},
         {"tasks_pkey"},
         false,
         true,
         "task_id = "},
        {"cancel",
         postgres::kCancel.sql,
         {id, "'tenant-1'", now},
         {"tasks_pkey"},
         false,
         true,
         "task_id = "},
    };
    for (const PlanCase& plan_case : cases) {
        Check(plan_case);
    }
    for (const PlanCase& plan_case : FencedWriteCases(id, now)) {
        Check(plan_case);
    }
}

}  // namespace
}  // namespace conveyor
