#include "storage/postgres/postgres_test_support.hpp"

namespace conveyor::postgres_test {
namespace {

// The cluster starts on first use, so that tests without a database cost
// nothing, and stops when the global environment tears down.
struct SharedState {
    std::unique_ptr<TestCluster> cluster;
    bool started = false;
    std::string start_error;
};

SharedState& State() {
    static SharedState state;
    return state;
}

class ClusterEnvironment : public testing::Environment {
  public:
    void TearDown() override { State().cluster.reset(); }
};

// GoogleTest owns and deletes the environment.
[[maybe_unused]] testing::Environment* const kClusterEnvironment =
    testing::AddGlobalTestEnvironment(new ClusterEnvironment);

}  // namespace

TestCluster* SharedCluster() {
    SharedState& state = State();
    if (!state.started) {
        state.started = true;
        Result<std::unique_ptr<TestCluster>> started = TestCluster::Start();
        if (started.ok()) {
            state.cluster = std::move(*started);
        } else {
            state.start_error = started.status().message();
        }
    }
    return state.cluster.get();
}

void DatabaseTest::SetUp() {
    TestCluster* cluster = SharedCluster();
    ASSERT_NE(cluster, nullptr) << "cannot start the PostgreSQL test cluster: "
                                << State().start_error;
    Result<TestDatabase> created = cluster->CreateDatabase();
    ASSERT_TRUE(created.ok()) << created.status().message();
    database_ = *created;
}

void DatabaseTest::TearDown() {
    sql_.reset();
    if (TestCluster* cluster = SharedCluster(); cluster != nullptr && !database_.name.empty()) {
        Status dropped = cluster->DropDatabase(database_.name);
        EXPECT_TRUE(dropped.ok()) << dropped.message();
    }
}

std::unique_ptr<PostgresTaskStore> DatabaseTest::OpenStore(int pool_size) {
    Result<std::unique_ptr<PostgresTaskStore>> opened =
        PostgresTaskStore::Open(PostgresOptions{.url = database_.url, .pool_size = pool_size});
    if (!opened.ok()) {
        ADD_FAILURE() << "Open failed: " << opened.status().message();
        return nullptr;
    }
    Status migrated = (*opened)->Migrate();
    EXPECT_TRUE(migrated.ok()) << migrated.message();
    return std::move(*opened);
}

postgres::Connection& DatabaseTest::Sql() {
    if (sql_ == nullptr || !sql_->CheckIdle()) {
        Result<std::unique_ptr<postgres::Connection>> opened =
            postgres::Connection::Open(database_.url + "&application_name=conveyor-test");
        if (!opened.ok()) {
            ADD_FAILURE() << "cannot connect to the test database: " << opened.status().message();
        } else {
            sql_ = std::move(*opened);
        }
    }
    return *sql_;
}

std::string DatabaseTest::SqlValue(const std::string& sql) {
    Result<postgres::QueryResult> rows = Sql().ExecuteScript(sql);
    if (!rows.ok()) {
        ADD_FAILURE() << sql << " failed: " << rows.status().message();
        return "";
    }
    if (rows->rows() == 0 || rows->IsNull(0, 0)) {
        return "";
    }
    return rows->Text(0, 0);
}

}  // namespace conveyor::postgres_test
