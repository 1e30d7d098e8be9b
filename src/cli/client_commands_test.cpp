#include "cli/client_commands.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/api_client.hpp"
#include "cli/exit_status.hpp"
#include "cli/http_client.hpp"
#include "cli/server_address.hpp"
#include "cli/task_params.hpp"

namespace conveyor::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------------------
// An HTTP server on 127.0.0.1 that records each request and sends canned
// responses in order.

struct CannedResponse {
    int status = 200;
    std::string body;
    // Close the connection after this response without a "Connection: close"
    // header, as a server does when it drops an idle keep-alive connection.
    bool close_silently = false;
    std::string retry_after{};  // sent as Retry-After when not empty
};

struct RecordedRequest {
    http::request<http::string_body> message;
    int connection = 0;  // accept order of the connection it arrived on, from 0
};

using ResponseFunction =
    std::function<CannedResponse(const http::request<http::string_body>&, int connection)>;

class TestSession : public std::enable_shared_from_this<TestSession> {
  public:
    TestSession(tcp::socket socket, int connection, ResponseFunction respond)
        : stream_(std::move(socket)), connection_(connection), respond_(std::move(respond)) {}

    void Read() {
        request_ = {};
        http::async_read(stream_, buffer_, request_,
                         [self = shared_from_this()](beast::error_code error, std::size_t) {
                             if (!error) {
                                 self->Respond();
                             }
                         });
    }

  private:
    void Respond() {
        CannedResponse canned = respond_(request_, connection_);
        response_ = {};
        response_.version(11);
        response_.result(static_cast<unsigned>(canned.status));
        response_.set(http::field::content_type,
                      canned.status < 400 ? "application/json" : "application/problem+json");
        if (!canned.retry_after.empty()) {
            response_.set(http::field::retry_after, canned.retry_after);
        }
        response_.body() = canned.body;
        response_.keep_alive(request_.keep_alive());
        response_.prepare_payload();
        close_after_write_ = canned.close_silently || !request_.keep_alive();
        http::async_write(stream_, response_,
                          [self = shared_from_this()](beast::error_code error, std::size_t) {
                              if (error || self->close_after_write_) {
                                  self->Close();
                                  return;
                              }
                              self->Read();
                          });
    }

    void Close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    beast::tcp_stream stream_;
    int connection_;
    ResponseFunction respond_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> request_;
    http::response<http::string_body> response_;
    bool close_after_write_ = false;
};

class TestServer {
  public:
    // After the last canned response, every request gets a 500.
    explicit TestServer(std::vector<CannedResponse> responses = {})
        : responses_(responses.begin(), responses.end()) {
        tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
        acceptor_.open(endpoint.protocol());
        acceptor_.bind(endpoint);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        Accept();
        thread_ = std::thread([this] { io_context_.run(); });
    }

    ~TestServer() {
        io_context_.stop();
        thread_.join();
    }

    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    std::vector<RecordedRequest> Requests() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return requests_;
    }

  private:
    void Accept() {
        acceptor_.async_accept([this](beast::error_code error, tcp::socket socket) {
            if (error) {
                return;
            }
            auto session = std::make_shared<TestSession>(
                std::move(socket), accepted_connections_++,
                [this](const http::request<http::string_body>& request, int connection) {
                    return Record(request, connection);
                });
            session->Read();
            Accept();
        });
    }

    CannedResponse Record(const http::request<http::string_body>& request, int connection) {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(RecordedRequest{request, connection});
        if (responses_.empty()) {
            return CannedResponse{500, R"({"code":"internal_error","status":500})"};
        }
        CannedResponse next = responses_.front();
        responses_.pop_front();
        return next;
    }

    asio::io_context io_context_;
    tcp::acceptor acceptor_{io_context_};
    unsigned short port_ = 0;
    int accepted_connections_ = 0;  // touched on the server thread only
    mutable std::mutex mutex_;
    std::deque<CannedResponse> responses_;
    std::vector<RecordedRequest> requests_;
    std::thread thread_;
};

// A loopback port that refuses connections: the socket is bound, so no other
// process can take the port, but it does not listen.
class RefusingPort {
  public:
    RefusingPort() {
        socket_.open(tcp::v4());
        socket_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    }

    unsigned short port() const { return socket_.local_endpoint().port(); }
    std::string Url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  private:
    asio::io_context io_context_;
    tcp::socket socket_{io_context_};
};

class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "conveyor-cli-test-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// ---------------------------------------------------------------------------
// Running a command with captured streams and a clean environment.

constexpr std::array<const char*, 13> kEnvironmentVariables = {
    "CONVEYOR_SERVER",          "CONVEYOR_API_KEY",      "CONVEYOR_FILE",
    "CONVEYOR_PARAM",           "CONVEYOR_TYPE",         "CONVEYOR_WAIT",
    "CONVEYOR_IDEMPOTENCY_KEY", "CONVEYOR_MAX_ATTEMPTS", "CONVEYOR_STATUS",
    "CONVEYOR_LIMIT",           "CONVEYOR_ORDER",        "CONVEYOR_ALL",
    "CONVEYOR_INCLUDE_TEXT",
};

class CommandTest : public ::testing::Test {
  protected:
    void SetUp() override { ClearEnvironment(); }
    void TearDown() override { ClearEnvironment(); }

  private:
    static void ClearEnvironment() {
        for (const char* name : kEnvironmentVariables) {
            unsetenv(name);
        }
    }
};

using SubmitCommand = CommandTest;
using GetCommand = CommandTest;
using ListCommand = CommandTest;
using TaskActionCommand = CommandTest;
using ClientCommand = CommandTest;

struct CommandOutput {
    int exit_status = -1;
    std::string out;
    std::string err;
};

// Runs `conveyor ARGS...` with `input` as standard input.
CommandOutput RunCommand(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), "conveyor");
    std::istringstream in(input);
    std::ostringstream out;
    std::ostringstream err;
    CommandOutput output;
    output.exit_status = RunClientCommand(args, Console{in, out, err});
    output.out = out.str();
    output.err = err.str();
    return output;
}

std::string TaskJson(std::string_view task_id, std::string_view status) {
    return R"({"task_id":")" + std::string(task_id) + R"(","status":")" + std::string(status) +
           R"(","attempts":0})";
}

constexpr std::string_view kTaskId = "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b";

// ---------------------------------------------------------------------------
// Pure parts.

TEST(TaskParams, BooleansBecomeJsonBooleans) {
    auto true_value = ParseParamValue("true");
    auto false_value = ParseParamValue("false");
    ASSERT_TRUE(true_value.ok());
    ASSERT_TRUE(false_value.ok());
    EXPECT_EQ(*true_value, json::value(true));
    EXPECT_EQ(*false_value, json::value(false));
}

TEST(TaskParams, IntegersBecomeJsonNumbers) {
    for (const auto& [text, number] : std::vector<std::pair<std::string, std::int64_t>>{
             {"5", 5}, {"0", 0}, {"-3", -3}, {"9223372036854775807", INT64_MAX}}) {
        auto value = ParseParamValue(text);
        ASSERT_TRUE(value.ok()) << text;
        EXPECT_TRUE(value->is_int64()) << text;
        EXPECT_EQ(*value, json::value(number)) << text;
    }
}

TEST(TaskParams, OtherValuesStayStrings) {
    for (std::string text : {"english", "1.5", "True", "", "-", "+5", "5a", "0x10", " 5"}) {
        auto value = ParseParamValue(text);
        ASSERT_TRUE(value.ok()) << text;
        EXPECT_EQ(*value, json::value(json::string(text))) << text;
    }
}

TEST(TaskParams, RejectsIntegerOutOfRange) {
    EXPECT_FALSE(ParseParamValue("9223372036854775808").ok());
    EXPECT_FALSE(ParseParamValue("-9223372036854775809").ok());
}

TEST(TaskParams, BuildsObjectFromArguments) {
    auto params = ParseParams({"top_n=5", "language=english", "stem=false"});
    ASSERT_TRUE(params.ok()) << params.status().message();
    EXPECT_EQ(json::value(*params),
              json::parse(R"({"top_n":5,"language":"english","stem":false})"));
}

TEST(TaskParams, SplitsAtFirstEquals) {
    auto params = ParseParams({"a=b=c", "empty="});
    ASSERT_TRUE(params.ok()) << params.status().message();
    EXPECT_EQ(json::value(*params), json::parse(R"({"a":"b=c","empty":""})"));
}

TEST(TaskParams, RejectsArgumentWithoutEquals) {
    auto params = ParseParams({"top_n"});
    ASSERT_FALSE(params.ok());
    EXPECT_NE(params.status().message().find("'top_n'"), std::string::npos)
        << params.status().message();
}

TEST(TaskParams, RejectsEmptyKey) {
    EXPECT_FALSE(ParseParams({"=5"}).ok());
}

TEST(TaskParams, RejectsRepeatedKey) {
    EXPECT_FALSE(ParseParams({"top_n=5", "top_n=6"}).ok());
}

TEST(TaskParams, RejectsOutOfRangeValue) {
    EXPECT_FALSE(ParseParams({"top_n=99999999999999999999"}).ok());
}

TEST(ServerAddress, ParsesHostAndPort) {
    auto address = ParseServerAddress("http://127.0.0.1:8080");
    ASSERT_TRUE(address.ok()) << address.status().message();
    EXPECT_EQ(address->host, "127.0.0.1");
    EXPECT_EQ(address->port, "8080");
    EXPECT_EQ(address->base_path, "");
    EXPECT_EQ(address->HostHeader(), "127.0.0.1:8080");
    EXPECT_EQ(address->ToUrl(), "http://127.0.0.1:8080");
}

TEST(ServerAddress, DefaultsPortTo80) {
    auto address = ParseServerAddress("http://localhost");
    ASSERT_TRUE(address.ok()) << address.status().message();
    EXPECT_EQ(address->host, "localhost");
    EXPECT_EQ(address->port, "80");
}

TEST(ServerAddress, KeepsBasePathWithoutTrailingSlash) {
    auto with_path = ParseServerAddress("http://localhost:9000/conveyor/");
    auto root = ParseServerAddress("http://localhost:9000/");
    ASSERT_TRUE(with_path.ok()) << with_path.status().message();
    ASSERT_TRUE(root.ok()) << root.status().message();
    EXPECT_EQ(with_path->base_path, "/conveyor");
    EXPECT_EQ(with_path->ToUrl(), "http://localhost:9000/conveyor");
    EXPECT_EQ(root->base_path, "");
}

TEST(ServerAddress, ParsesIpv6Literal) {
    auto address = ParseServerAddress("http://[::1]:9000");
    ASSERT_TRUE(address.ok()) << address.status().message();
    EXPECT_EQ(address->host, "::1");
    EXPECT_EQ(address->HostHeader(), "[::1]:9000");
}

TEST(ServerAddress, RejectsHttps) {
    auto address = ParseServerAddress("https://127.0.0.1:8443");
    ASSERT_FALSE(address.ok());
    EXPECT_NE(address.status().message().find("https is not supported"), std::string::npos)
        << address.status().message();
}

TEST(ServerAddress, RejectsMalformedUrls) {
    for (std::string url : {"", "127.0.0.1:8080", "localhost:8080", "ftp://localhost",
                            "http://:8080", "http:///conveyor", "http://user:secret@localhost",
                            "http://localhost/?a=b", "http://localhost/#top", "http://localhost:0",
                            "http://localhost:65536", "http://localhost:", "http://local host"}) {
        auto address = ParseServerAddress(url);
        EXPECT_FALSE(address.ok()) << url;
        if (!address.ok()) {
            EXPECT_EQ(address.status().code(), StatusCode::kInvalidArgument) << url;
        }
    }
}

TEST(BuildTarget, JoinsBasePathSegmentsAndQuery) {
    EXPECT_EQ(BuildTarget("/base", {"v1", "tasks", "id"}, {{"wait", "60"}, {"include", "text"}}),
              "/base/v1/tasks/id?wait=60&include=text");
    EXPECT_EQ(BuildTarget("", {"v1", "tasks"}, {}), "/v1/tasks");
}

TEST(BuildTarget, EncodesSegmentsAndQueryValues) {
    EXPECT_EQ(BuildTarget("", {"v1", "tasks", "a/b c?"}, {}), "/v1/tasks/a%2Fb%20c%3F");
    EXPECT_EQ(BuildTarget("", {"v1"}, {{"cursor", "a&b=c d#+/"}}),
              "/v1?cursor=a%26b%3Dc%20d%23%2B%2F");
    EXPECT_EQ(BuildTarget("", {"v1"}, {{"status", "PENDING,FAILED"}}), "/v1?status=PENDING,FAILED");
}

TEST(ExitStatus, MapsHttpStatus) {
    EXPECT_EQ(ExitStatusForHttpStatus(200), kExitOk);
    EXPECT_EQ(ExitStatusForHttpStatus(202), kExitOk);
    EXPECT_EQ(ExitStatusForHttpStatus(299), kExitOk);
    EXPECT_EQ(ExitStatusForHttpStatus(199), kExitServerError);
    EXPECT_EQ(ExitStatusForHttpStatus(302), kExitServerError);
    EXPECT_EQ(ExitStatusForHttpStatus(400), kExitServerError);
    EXPECT_EQ(ExitStatusForHttpStatus(404), kExitServerError);
    EXPECT_EQ(ExitStatusForHttpStatus(409), kExitServerError);
    EXPECT_EQ(ExitStatusForHttpStatus(500), kExitServerError);
    EXPECT_EQ(ExitStatusForHttpStatus(503), kExitServerError);
}

TEST(ExitStatus, HasDistinctValues) {
    EXPECT_EQ(kExitOk, 0);
    EXPECT_EQ(kExitServerError, 1);
    EXPECT_EQ(kExitUsageError, 2);
    EXPECT_EQ(kExitUnreachable, 3);
}

// ---------------------------------------------------------------------------
// HttpClient transport failures.

TEST(HttpClient, TimesOutWhenServerIsSilent) {
    // The kernel completes the handshake into the backlog, but nothing ever
    // accepts the connection or reads the request.
    asio::io_context io_context;
    tcp::acceptor silent(io_context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    HttpClient client(
        ServerAddress{"127.0.0.1", std::to_string(silent.local_endpoint().port()), ""},
        HttpClientOptions{});
    HttpRequest request;
    request.target = "/v1/tasks";
    request.timeout = std::chrono::milliseconds(200);

    Result<HttpResponse> response = client.Send(request);

    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.status().code(), StatusCode::kDeadlineExceeded);
    EXPECT_NE(response.status().message().find("timed out after 200 ms"), std::string::npos)
        << response.status().message();
}

TEST(HttpClient, RefusedConnectionIsUnavailable) {
    RefusingPort refusing;
    HttpClient client(ServerAddress{"127.0.0.1", std::to_string(refusing.port()), ""},
                      HttpClientOptions{});
    HttpRequest request;
    request.target = "/v1/tasks";

    Result<HttpResponse> response = client.Send(request);

    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
}

TEST(HttpClient, ReusesConnection) {
    TestServer server({{200, "{}"}, {200, "{}"}});
    auto address = ParseServerAddress(server.Url());
    ASSERT_TRUE(address.ok());
    HttpClient client(*address, HttpClientOptions{});
    HttpRequest request;
    request.target = "/healthz";

    ASSERT_TRUE(client.Send(request).ok());
    ASSERT_TRUE(client.Send(request).ok());

    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[0].connection, 0);
    EXPECT_EQ(requests[1].connection, 0);
}

TEST(HttpClient, DoesNotResendPostOnClosedConnection) {
    TestServer server({{200, "{}", true}, {200, "{}"}});
    auto address = ParseServerAddress(server.Url());
    ASSERT_TRUE(address.ok());
    HttpClient client(*address, HttpClientOptions{});
    HttpRequest request;
    request.method = HttpMethod::kPost;
    request.target = "/v1/tasks";
    request.json_body = "{}";

    ASSERT_TRUE(client.Send(request).ok());
    Result<HttpResponse> second = client.Send(request);

    EXPECT_FALSE(second.ok()) << "a POST must not be sent twice";
    EXPECT_EQ(server.Requests().size(), 1U);
}

// ---------------------------------------------------------------------------
// submit

TEST_F(SubmitCommand, PostsTextAsJson) {
    const std::string pending = TaskJson(kTaskId, "PENDING");
    TestServer server({{202, pending}});

    CommandOutput output = RunCommand({"submit", "hello world", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, pending + "\n");
    EXPECT_EQ(output.err, "");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    const auto& message = requests[0].message;
    EXPECT_EQ(message.method(), http::verb::post);
    EXPECT_EQ(message.target(), "/v1/tasks");
    EXPECT_EQ(message[http::field::content_type], "application/json");
    EXPECT_EQ(message[http::field::host], "127.0.0.1:" + server.Url().substr(17));
    EXPECT_EQ(message.count(http::field::authorization), 0U);
    EXPECT_EQ(message.count("Idempotency-Key"), 0U);
    EXPECT_EQ(json::parse(message.body()), json::parse(R"({"text":"hello world"})"));
}

TEST_F(SubmitCommand, SendsParamsTypeAndMaxAttempts) {
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output = RunCommand({"submit", "--param", "top_n=5", "--param", "stem=true",
                                       "--param", "language=english", "--type", "text.analyze",
                                       "--max-attempts", "4", "text", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(json::parse(requests[0].message.body()),
              json::parse(R"({"text":"text","type":"text.analyze","max_attempts":4,
                              "params":{"top_n":5,"stem":true,"language":"english"}})"));
}

TEST_F(SubmitCommand, SendsIdempotencyAndApiKeys) {
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output = RunCommand({"submit", "x", "--idempotency-key", "order-17", "--api-key",
                                       "secret", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message["Idempotency-Key"], "order-17");
    EXPECT_EQ(requests[0].message[http::field::authorization], "Bearer secret");
}

TEST_F(SubmitCommand, ReadsFileBytesExactly) {
    TempDir dir;
    const std::string content("a\0b\r\n\xc3\xa9 \t\n\n", 10);
    const std::filesystem::path path = dir.path() / "input.txt";
    std::ofstream(path, std::ios::binary) << content;
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output =
        RunCommand({"submit", "--file", path.string(), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    json::value body = json::parse(requests[0].message.body());
    ASSERT_TRUE(body.is_object());
    EXPECT_EQ(std::string(body.at("text").as_string()), content);
}

TEST_F(SubmitCommand, ReadsStandardInputForDash) {
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output =
        RunCommand({"submit", "--file", "-", "--server", server.Url()}, "from stdin\n");

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(json::parse(requests[0].message.body()), json::parse(R"({"text":"from stdin\n"})"));
}

TEST_F(SubmitCommand, SendsEmptyText) {
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output = RunCommand({"submit", "", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(json::parse(requests[0].message.body()), json::parse(R"({"text":""})"));
}

TEST_F(SubmitCommand, ParamTakesOneValuePerFlag) {
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output =
        RunCommand({"submit", "--param", "top_n=3", "the text", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(json::parse(requests[0].message.body()),
              json::parse(R"({"text":"the text","params":{"top_n":3}})"));
}

TEST_F(SubmitCommand, RejectsTextWithFile) {
    TestServer server;

    CommandOutput output =
        RunCommand({"submit", "text", "--file", "-", "--server", server.Url()}, "stdin");

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("not both"), std::string::npos) << output.err;
    EXPECT_EQ(output.out, "");
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, RejectsMissingText) {
    TestServer server;

    CommandOutput output = RunCommand({"submit", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("missing text"), std::string::npos) << output.err;
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, RejectsBadParam) {
    TestServer server;

    CommandOutput output =
        RunCommand({"submit", "x", "--param", "top_n", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("invalid --param 'top_n'"), std::string::npos) << output.err;
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, RejectsMissingFile) {
    TempDir dir;
    const std::string path = (dir.path() / "absent.txt").string();
    TestServer server;

    CommandOutput output = RunCommand({"submit", "--file", path, "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find(path), std::string::npos) << output.err;
    EXPECT_NE(output.err.find("No such file"), std::string::npos) << output.err;
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, RejectsDirectoryAsFile) {
    TempDir dir;
    TestServer server;

    CommandOutput output =
        RunCommand({"submit", "--file", dir.path().string(), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("is a directory"), std::string::npos) << output.err;
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, RejectsInvalidUtf8) {
    TestServer server;

    CommandOutput output = RunCommand({"submit", "caf\xe9", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("UTF-8"), std::string::npos) << output.err;
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, RejectsNonIntegerMaxAttempts) {
    TestServer server;

    CommandOutput output =
        RunCommand({"submit", "x", "--max-attempts", "many", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(SubmitCommand, WaitPollsUntilTerminal) {
    const std::string completed = TaskJson(kTaskId, "COMPLETED");
    TestServer server({{202, TaskJson(kTaskId, "PENDING")},
                       {200, TaskJson(kTaskId, "PROCESSING")},
                       {200, completed}});

    CommandOutput output = RunCommand({"submit", "x", "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, completed + "\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 3U);
    const std::string poll_target = "/v1/tasks/" + std::string(kTaskId) + "?wait=60";
    for (std::size_t i = 1; i < requests.size(); ++i) {
        EXPECT_EQ(requests[i].message.method(), http::verb::get) << i;
        EXPECT_EQ(requests[i].message.target(), poll_target) << i;
        EXPECT_EQ(requests[i].connection, 0) << "request " << i << " opened a new connection";
    }
}

TEST_F(SubmitCommand, WaitReturnsTerminalTaskAtOnce) {
    const std::string completed = TaskJson(kTaskId, "COMPLETED");
    TestServer server({{202, completed}});

    CommandOutput output = RunCommand({"submit", "x", "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, completed + "\n");
    EXPECT_EQ(server.Requests().size(), 1U);
}

TEST_F(SubmitCommand, WaitStopsOnServerError) {
    const std::string problem = R"({"code":"task_not_found","status":404})";
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}, {404, problem}});

    CommandOutput output = RunCommand({"submit", "x", "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, problem + "\n");
}

constexpr std::string_view kRateLimited = R"({"code":"rate_limited","status":429})";

CannedResponse RateLimited(std::string retry_after) {
    return CannedResponse{429, std::string(kRateLimited), false, std::move(retry_after)};
}

TEST_F(SubmitCommand, WaitRetriesPollAfter429) {
    const std::string completed = TaskJson(kTaskId, "COMPLETED");
    TestServer server({{202, TaskJson(kTaskId, "PENDING")}, RateLimited("1"), {200, completed}});

    CommandOutput output = RunCommand({"submit", "x", "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, completed + "\n");
    EXPECT_EQ(
        output.err,
        "conveyor submit: the server responded with HTTP 429 rate_limited; retrying in 1 s\n");
    EXPECT_EQ(server.Requests().size(), 3U);
}

TEST_F(SubmitCommand, DoesNotRetrySubmissionAfter429) {
    TestServer server({RateLimited("1"), {202, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output = RunCommand({"submit", "x", "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, std::string(kRateLimited) + "\n");
    EXPECT_EQ(server.Requests().size(), 1U);
}

TEST_F(SubmitCommand, PrintsProblemOnError) {
    const std::string problem =
        R"({"type":"about:blank","title":"Validation failed","status":422,)"
        R"("code":"validation_failed","errors":[{"field":"params.top_n","message":"too big"}]})";
    TestServer server({{422, problem + "\n"}});

    CommandOutput output = RunCommand({"submit", "x", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, problem + "\n");
}

// ---------------------------------------------------------------------------
// get

TEST_F(GetCommand, GetsTask) {
    const std::string task = TaskJson(kTaskId, "PENDING");
    TestServer server({{200, task + "\n"}});

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, task + "\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.method(), http::verb::get);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks/" + std::string(kTaskId));
    EXPECT_EQ(requests[0].message.body(), "");
}

TEST_F(GetCommand, IncludeTextAddsQuery) {
    TestServer server({{200, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--include-text", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks/" + std::string(kTaskId) + "?include=text");
}

TEST_F(GetCommand, WaitLongPolls) {
    const std::string failed = TaskJson(kTaskId, "FAILED");
    TestServer server({{200, TaskJson(kTaskId, "PROCESSING")}, {200, failed}});

    CommandOutput output = RunCommand(
        {"get", std::string(kTaskId), "--wait", "--include-text", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, failed + "\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 2U);
    for (const RecordedRequest& request : requests) {
        EXPECT_EQ(request.message.target(),
                  "/v1/tasks/" + std::string(kTaskId) + "?wait=60&include=text");
    }
}

TEST_F(GetCommand, WaitRetriesFirstPollAfter429) {
    const std::string completed = TaskJson(kTaskId, "COMPLETED");
    TestServer server({RateLimited("1"), {200, completed}});

    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, completed + "\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 2U);
    for (const RecordedRequest& request : requests) {
        EXPECT_EQ(request.message.target(), "/v1/tasks/" + std::string(kTaskId) + "?wait=60");
    }
}

// A missing value, a date in the past and 0 are all read as the shortest
// delay, one second.
TEST_F(GetCommand, WaitRetriesWithoutUsableRetryAfter) {
    const std::string cancelled = TaskJson(kTaskId, "CANCELLED");
    TestServer server({RateLimited(""),
                       RateLimited("Wed, 21 Oct 2026 07:28:00 GMT"),
                       RateLimited("0"),
                       {200, cancelled}});

    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, cancelled + "\n");
    EXPECT_EQ(server.Requests().size(), 4U);
}

TEST_F(GetCommand, WaitStopsWhenRetryAfterDatePassesDeadline) {
    // A date years ahead is past the 24 hours that --wait waits at most.
    TestServer server(
        {RateLimited("Sun, 21 Oct 2035 07:28:00 GMT"), {200, TaskJson(kTaskId, "COMPLETED")}});

    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.err, std::string(kRateLimited) + "\n");
    EXPECT_EQ(server.Requests().size(), 1U);
}

TEST_F(GetCommand, WaitReadsObsoleteRetryAfterDates) {
    // Both dates are years ahead, past the 24 hours that --wait waits.
    for (const std::string date : {"Sunday, 21-Oct-35 07:28:00 GMT", "Sun Oct 21 07:28:00 2035"}) {
        TestServer server({RateLimited(date), {200, TaskJson(kTaskId, "COMPLETED")}});

        CommandOutput output =
            RunCommand({"get", std::string(kTaskId), "--wait", "--server", server.Url()});

        EXPECT_EQ(output.exit_status, kExitServerError) << date;
        EXPECT_EQ(server.Requests().size(), 1U) << date;
    }
}

TEST_F(GetCommand, WaitStopsWhenRetryAfterPassesDeadline) {
    // 100000 s is past the 24 hours that --wait waits at most.
    TestServer server({RateLimited("100000"), {200, TaskJson(kTaskId, "COMPLETED")}});

    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--wait", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, std::string(kRateLimited) + "\n");
    EXPECT_EQ(server.Requests().size(), 1U);
}

TEST_F(GetCommand, DoesNotRetryWithoutWait) {
    TestServer server({RateLimited("1"), {200, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.err, std::string(kRateLimited) + "\n");
    EXPECT_EQ(server.Requests().size(), 1U);
}

TEST_F(GetCommand, EncodesIdAsOneSegment) {
    TestServer server({{400, R"({"code":"invalid_task_id","status":400})"}});

    CommandOutput output = RunCommand({"get", "../healthz", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks/..%2Fhealthz");
}

TEST_F(GetCommand, NotFoundExitsOne) {
    const std::string problem =
        R"({"type":"about:blank","title":"Not Found","status":404,"code":"task_not_found"})";
    TestServer server({{404, problem}});

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, problem + "\n");
}

TEST_F(GetCommand, ReportsErrorWithoutJsonBody) {
    TestServer server({{502, "<html>Bad Gateway</html>"}});

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_NE(output.err.find("HTTP 502"), std::string::npos) << output.err;
}

TEST_F(GetCommand, RejectsSuccessWithoutJson) {
    TestServer server({{200, "plain text"}});

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_NE(output.err.find("not JSON"), std::string::npos) << output.err;
}

TEST_F(GetCommand, RequiresId) {
    CommandOutput output = RunCommand({"get"});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("conveyor get:"), std::string::npos) << output.err;
}

TEST_F(GetCommand, RejectsEmptyId) {
    TestServer server;

    CommandOutput output = RunCommand({"get", "", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_TRUE(server.Requests().empty());
}

// ---------------------------------------------------------------------------
// list

TEST_F(ListCommand, SendsFiltersAsQuery) {
    const std::string page = R"({"items":[],"next_cursor":null})";
    TestServer server({{200, page}});

    CommandOutput output =
        RunCommand({"list", "--status", "PENDING,PROCESSING", "--type", "text.analyze", "--limit",
                    "5", "--order", "asc", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, page + "\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.method(), http::verb::get);
    EXPECT_EQ(requests[0].message.target(),
              "/v1/tasks?status=PENDING,PROCESSING&type=text.analyze&order=asc&limit=5");
}

TEST_F(ListCommand, SendsNoQueryByDefault) {
    TestServer server({{200, R"({"items":[],"next_cursor":"abc"})"}});

    CommandOutput output = RunCommand({"list", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks");
}

TEST_F(ListCommand, RejectsUnknownOrder) {
    TestServer server;

    CommandOutput output = RunCommand({"list", "--order", "up", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(ListCommand, RejectsNonIntegerLimit) {
    TestServer server;

    CommandOutput output = RunCommand({"list", "--limit", "ten", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_TRUE(server.Requests().empty());
}

TEST_F(ListCommand, AllWalksEveryPage) {
    TestServer server({{200, R"({"items":[{"task_id":"a"},{"task_id":"b"}],"next_cursor":"c1"})"},
                       {200, R"({"items":[{"task_id":"c"}],"next_cursor":"c2=/+"})"},
                       {200, R"({"items":[],"next_cursor":null})"}});

    CommandOutput output =
        RunCommand({"list", "--all", "--status", "FAILED", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    ASSERT_FALSE(output.out.empty());
    EXPECT_EQ(output.out.back(), '\n');
    EXPECT_EQ(json::parse(output.out), json::parse(R"({"items":[{"task_id":"a"},{"task_id":"b"},
                                                               {"task_id":"c"}],"next_cursor":null})"));
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 3U);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks?status=FAILED&limit=100");
    EXPECT_EQ(requests[1].message.target(), "/v1/tasks?status=FAILED&limit=100&cursor=c1");
    EXPECT_EQ(requests[2].message.target(), "/v1/tasks?status=FAILED&limit=100&cursor=c2%3D%2F%2B");
    for (const RecordedRequest& request : requests) {
        EXPECT_EQ(request.connection, 0) << "each page should reuse the first connection";
    }
}

TEST_F(ListCommand, AllKeepsGivenLimit) {
    TestServer server({{200, R"({"items":[],"next_cursor":null})"}});

    CommandOutput output = RunCommand({"list", "--all", "--limit", "2", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, "{\"items\":[],\"next_cursor\":null}\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks?limit=2");
}

TEST_F(ListCommand, AllReconnectsAfterServerClosesConnection) {
    TestServer server({{200, R"({"items":[{"task_id":"a"}],"next_cursor":"c1"})", true},
                       {200, R"({"items":[{"task_id":"b"}],"next_cursor":null})"}});

    CommandOutput output = RunCommand({"list", "--all", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(json::parse(output.out),
              json::parse(R"({"items":[{"task_id":"a"},{"task_id":"b"}],"next_cursor":null})"));
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[1].connection, 1);
}

TEST_F(ListCommand, AllStopsOnErrorPage) {
    const std::string problem = R"({"code":"invalid_cursor","status":400})";
    TestServer server({{200, R"({"items":[{"task_id":"a"}],"next_cursor":"c1"})"}, {400, problem}});

    CommandOutput output = RunCommand({"list", "--all", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, problem + "\n");
}

TEST_F(ListCommand, AllStopsOnRepeatedCursor) {
    const std::string page = R"({"items":[{"task_id":"a"}],"next_cursor":"same"})";
    TestServer server({{200, page}, {200, page}, {200, page}});

    CommandOutput output = RunCommand({"list", "--all", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(server.Requests().size(), 2U);
}

TEST_F(ListCommand, AllRejectsPageWithoutItems) {
    TestServer server({{200, R"({"next_cursor":null})"}});

    CommandOutput output = RunCommand({"list", "--all", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
}

// ---------------------------------------------------------------------------
// cancel and retry

TEST_F(TaskActionCommand, CancelPostsToCancelRoute) {
    const std::string cancelled = TaskJson(kTaskId, "CANCELLED");
    TestServer server({{200, cancelled}});

    CommandOutput output = RunCommand({"cancel", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    EXPECT_EQ(output.out, cancelled + "\n");
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.method(), http::verb::post);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks/" + std::string(kTaskId) + "/cancel");
    EXPECT_EQ(requests[0].message.body(), "");
}

TEST_F(TaskActionCommand, RetryPostsToRetryRoute) {
    TestServer server({{200, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output = RunCommand({"retry", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.method(), http::verb::post);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks/" + std::string(kTaskId) + "/retry");
}

TEST_F(TaskActionCommand, ConflictExitsOne) {
    const std::string problem = R"({"code":"task_not_cancellable","status":409})";
    TestServer server({{409, problem}});

    CommandOutput output = RunCommand({"cancel", std::string(kTaskId), "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitServerError);
    EXPECT_EQ(output.out, "");
    EXPECT_EQ(output.err, problem + "\n");
}

TEST_F(TaskActionCommand, RequiresId) {
    CommandOutput output = RunCommand({"retry"});

    EXPECT_EQ(output.exit_status, kExitUsageError);
}

// ---------------------------------------------------------------------------
// Options and failures shared by every command

TEST_F(ClientCommand, RecognisesClientCommands) {
    for (std::string_view name : {"submit", "get", "list", "cancel", "retry"}) {
        EXPECT_TRUE(IsClientCommand(name)) << name;
    }
    for (std::string_view name : {"serve", "api", "worker", "migrate", "", "Submit"}) {
        EXPECT_FALSE(IsClientCommand(name)) << name;
    }
}

TEST_F(ClientCommand, RejectsOtherCommand) {
    CommandOutput output = RunCommand({"serve"});

    EXPECT_EQ(output.exit_status, kExitUsageError);
}

TEST_F(ClientCommand, UnreachableServerExitsThree) {
    RefusingPort refusing;

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--server", refusing.Url()});

    EXPECT_EQ(output.exit_status, kExitUnreachable);
    EXPECT_EQ(output.out, "");
    EXPECT_NE(output.err.find(refusing.Url()), std::string::npos) << output.err;
    EXPECT_EQ(std::count(output.err.begin(), output.err.end(), '\n'), 1) << output.err;
}

TEST_F(ClientCommand, UnreachableServerExitsThreeForEveryCommand) {
    RefusingPort refusing;
    std::vector<std::vector<std::string>> commands = {
        {"submit", "x"}, {"list"}, {"list", "--all"}, {"cancel", "id"}, {"retry", "id"}};

    for (std::vector<std::string> args : commands) {
        args.push_back("--server");
        args.push_back(refusing.Url());
        CommandOutput output = RunCommand(args);
        EXPECT_EQ(output.exit_status, kExitUnreachable) << args[0] << ": " << output.err;
    }
}

TEST_F(ClientCommand, HttpsServerIsUsageError) {
    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--server", "https://127.0.0.1:8443"});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("https is not supported"), std::string::npos) << output.err;
}

TEST_F(ClientCommand, MalformedServerIsUsageError) {
    CommandOutput output = RunCommand({"list", "--server", "127.0.0.1:8080"});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("invalid --server URL '127.0.0.1:8080'"), std::string::npos)
        << output.err;
}

TEST_F(ClientCommand, UnknownOptionIsUsageError) {
    CommandOutput output = RunCommand({"list", "--colour"});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_NE(output.err.find("conveyor list:"), std::string::npos) << output.err;
}

TEST_F(ClientCommand, HelpExitsZero) {
    CommandOutput output = RunCommand({"submit", "--help"});

    EXPECT_EQ(output.exit_status, kExitOk);
    EXPECT_NE(output.out.find("--idempotency-key"), std::string::npos) << output.out;
    EXPECT_NE(output.out.find("CONVEYOR_SERVER"), std::string::npos) << output.out;
}

TEST_F(ClientCommand, BasePathPrefixesRoutes) {
    TestServer server({{200, TaskJson(kTaskId, "PENDING")}});

    CommandOutput output =
        RunCommand({"get", std::string(kTaskId), "--server", server.Url() + "/prefix/"});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.target(), "/prefix/v1/tasks/" + std::string(kTaskId));
}

TEST_F(ClientCommand, ReadsServerAndKeyFromEnvironment) {
    TestServer server({{200, TaskJson(kTaskId, "PENDING")}});
    setenv("CONVEYOR_SERVER", server.Url().c_str(), 1);
    setenv("CONVEYOR_API_KEY", "from-env", 1);

    CommandOutput output = RunCommand({"get", std::string(kTaskId)});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message[http::field::authorization], "Bearer from-env");
}

TEST_F(ClientCommand, FlagBeatsEnvironment) {
    RefusingPort refusing;
    TestServer server({{200, TaskJson(kTaskId, "PENDING")}});
    setenv("CONVEYOR_SERVER", refusing.Url().c_str(), 1);
    setenv("CONVEYOR_API_KEY", "from-env", 1);

    CommandOutput output = RunCommand(
        {"get", std::string(kTaskId), "--server", server.Url(), "--api-key", "from-flag"});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message[http::field::authorization], "Bearer from-flag");
}

// Only --server and --api-key read the environment: a variable such as
// CONVEYOR_MAX_ATTEMPTS, set for a server process, must not leak into
// what a client sends.
TEST_F(ClientCommand, IgnoresServerVariablesInEnvironment) {
    TestServer server({{200, R"({"items":[],"next_cursor":null})"}});
    setenv("CONVEYOR_SERVER", server.Url().c_str(), 1);
    setenv("CONVEYOR_STATUS", "FAILED", 1);
    setenv("CONVEYOR_LIMIT", "7", 1);

    CommandOutput output = RunCommand({"list"});

    EXPECT_EQ(output.exit_status, kExitOk) << output.err;
    std::vector<RecordedRequest> requests = server.Requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].message.target(), "/v1/tasks");
}

TEST_F(ClientCommand, RejectsApiKeyWithLineBreak) {
    TestServer server;

    CommandOutput output = RunCommand({"get", std::string(kTaskId), "--api-key",
                                       "key\r\nX-Injected: 1", "--server", server.Url()});

    EXPECT_EQ(output.exit_status, kExitUsageError);
    EXPECT_TRUE(server.Requests().empty());
}

}  // namespace
}  // namespace conveyor::cli
