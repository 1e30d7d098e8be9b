#include "core/api_keys.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/crypto.hpp"

namespace conveyor {
namespace {

// A valid line: key id, tenant, 16-byte salt and 32-byte hash, in hex.
const std::string kKeyId = "0123456789abcdef";
const std::string kSalt(32, 'a');
const std::string kHash(64, 'b');

std::string Line(const std::string& key_id, const std::string& tenant, const std::string& salt,
                 const std::string& hash) {
    return key_id + " " + tenant + " " + salt + " " + hash + "\n";
}

ApiKeySet MustParse(const std::string& content) {
    Result<ApiKeySet> parsed = ApiKeySet::Parse(content, "keys.txt");
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    return parsed.ok() ? std::move(*parsed) : ApiKeySet();
}

// Replaces the hash field of a generated line by `hash_hex`.
std::string WithHash(const GeneratedApiKey& generated, const std::string& hash_hex) {
    const std::string& line = generated.line;
    return line.substr(0, line.rfind(' ') + 1) + hash_hex + "\n";
}

TEST(ApiKeys, GeneratedKeyAuthenticatesAsItsTenant) {
    const GeneratedApiKey generated = GenerateApiKey("acme");
    const ApiKeySet keys = MustParse(generated.line + "\n");

    const std::optional<std::string_view> tenant = keys.Authenticate(generated.key);

    ASSERT_TRUE(tenant.has_value());
    EXPECT_EQ(*tenant, "acme");
}

TEST(ApiKeys, GeneratedKeyHasPrefixIdAndSecret) {
    const GeneratedApiKey generated = GenerateApiKey("acme");

    EXPECT_EQ(generated.key.size(), 64u) << "cvk_, 16 hex digits, '_' and 43 base64url characters";
    EXPECT_TRUE(generated.key.starts_with("cvk_"));
    EXPECT_EQ(ApiKeyId(generated.key), std::optional<std::string_view>(generated.key_id));
    EXPECT_TRUE(generated.line.starts_with(generated.key_id + " acme "));
}

TEST(ApiKeys, LineNeverHoldsTheKey) {
    const GeneratedApiKey generated = GenerateApiKey("acme");
    const std::string secret = generated.key.substr(21);

    EXPECT_EQ(generated.line.find(secret), std::string::npos);
}

TEST(ApiKeys, TwoKeysDiffer) {
    const GeneratedApiKey first = GenerateApiKey("acme");
    const GeneratedApiKey second = GenerateApiKey("acme");

    EXPECT_NE(first.key, second.key);
    EXPECT_NE(first.key_id, second.key_id);
}

TEST(ApiKeys, HashIsSha256OfSaltThenKey) {
    EXPECT_EQ(HashApiKey("salt", "cvk_key"), Sha256("saltcvk_key"));
    EXPECT_NE(HashApiKey("salt", "cvk_key"), HashApiKey("pepper", "cvk_key"));
}

TEST(ApiKeys, WrongSecretIsRejected) {
    const GeneratedApiKey generated = GenerateApiKey("acme");
    const ApiKeySet keys = MustParse(generated.line + "\n");
    std::string wrong = generated.key;
    wrong.back() = wrong.back() == 'A' ? 'B' : 'A';

    EXPECT_FALSE(keys.Authenticate(wrong).has_value());
}

// The stored hash differs from the key's hash in its first or its last
// byte only: the comparison must cover every byte.
TEST(ApiKeys, HashDifferingInOneByteIsRejected) {
    const GeneratedApiKey generated = GenerateApiKey("acme");
    const std::string hash_hex = generated.line.substr(generated.line.rfind(' ') + 1);
    std::string first_changed = hash_hex;
    first_changed[0] = first_changed[0] == '0' ? '1' : '0';
    std::string last_changed = hash_hex;
    last_changed.back() = last_changed.back() == '0' ? '1' : '0';

    EXPECT_FALSE(
        MustParse(WithHash(generated, first_changed)).Authenticate(generated.key).has_value());
    EXPECT_FALSE(
        MustParse(WithHash(generated, last_changed)).Authenticate(generated.key).has_value());
    EXPECT_TRUE(MustParse(WithHash(generated, hash_hex)).Authenticate(generated.key).has_value());
}

TEST(ApiKeys, UnknownKeyIdIsRejected) {
    const GeneratedApiKey stored = GenerateApiKey("acme");
    const GeneratedApiKey other = GenerateApiKey("acme");
    const ApiKeySet keys = MustParse(stored.line + "\n");

    EXPECT_FALSE(keys.Authenticate(other.key).has_value());
}

TEST(ApiKeys, MalformedKeysAreRejected) {
    const GeneratedApiKey generated = GenerateApiKey("acme");
    const ApiKeySet keys = MustParse(generated.line + "\n");
    const std::vector<std::string> malformed = {
        "",
        "cvk_",
        generated.key.substr(4),                                       // no prefix
        "CVK_" + generated.key.substr(4),                              // prefix in upper case
        generated.key.substr(0, 21),                                   // no secret
        generated.key.substr(0, 20) + "-" + generated.key.substr(21),  // no '_' after the id
        generated.key + std::string(300, 'a'),                         // too long
    };
    for (const std::string& key : malformed) {
        EXPECT_FALSE(keys.Authenticate(key).has_value()) << key;
    }
}

TEST(ApiKeys, KeyIdMustBeLowerCaseHex) {
    EXPECT_TRUE(ApiKeyId("cvk_0123456789abcdef_secret").has_value());
    EXPECT_FALSE(ApiKeyId("cvk_0123456789ABCDEF_secret").has_value());
    EXPECT_FALSE(ApiKeyId("cvk_0123456789abcdeg_secret").has_value());
}

TEST(ApiKeys, SkipsCommentsAndBlankLines) {
    const ApiKeySet keys = MustParse("# a comment\n\n   \n\t# indented comment\n" +
                                     Line(kKeyId, "acme", kSalt, kHash));

    EXPECT_EQ(keys.KeyCount(), 1u);
}

TEST(ApiKeys, AcceptsTabsCrLfAndNoFinalNewline) {
    const ApiKeySet keys = MustParse(kKeyId + "\tacme\t" + kSalt + "  " + kHash + "\r\n" +
                                     "fedcba9876543210 beta " + kSalt + " " + kHash);

    EXPECT_EQ(keys.KeyCount(), 2u);
    EXPECT_EQ(keys.TenantCount(), 2u);
}

TEST(ApiKeys, EmptyFileHasNoKeys) {
    EXPECT_EQ(MustParse("").KeyCount(), 0u);
}

TEST(ApiKeys, CountsKeysOfOneTenantOnce) {
    const ApiKeySet keys = MustParse(Line(kKeyId, "acme", kSalt, kHash) +
                                     Line("fedcba9876543210", "acme", kSalt, kHash));

    EXPECT_EQ(keys.KeyCount(), 2u);
    EXPECT_EQ(keys.TenantCount(), 1u);
}

struct BadLine {
    std::string content;
    std::string expected;  // a part of the error message
};

TEST(ApiKeys, BadLinesNameLineAndProblem) {
    const std::string good = Line(kKeyId, "acme", kSalt, kHash);
    const std::vector<BadLine> cases = {
        {"# header\n" + kKeyId + " acme " + kSalt + "\n", "line 2: expected 4 fields"},
        {good + kKeyId + " acme " + kSalt + " " + kHash + " extra\n", "line 2: expected 4 fields"},
        {Line("0123456789ABCDEF", "acme", kSalt, kHash), "line 1: the key id"},
        {Line("0123", "acme", kSalt, kHash), "line 1: the key id"},
        {Line(kKeyId, "ac/me", kSalt, kHash), "line 1: the tenant"},
        {Line(kKeyId, std::string(65, 't'), kSalt, kHash), "line 1: the tenant"},
        {Line(kKeyId, "acme", kSalt.substr(2), kHash), "line 1: the salt"},
        {Line(kKeyId, "acme", std::string(32, 'x'), kHash), "line 1: the salt"},
        {Line(kKeyId, "acme", kSalt, kHash + "00"), "line 1: the hash"},
        {good + "\n" + good, "line 3: the key id 0123456789abcdef appears on an earlier line"},
    };
    for (const BadLine& bad : cases) {
        Result<ApiKeySet> parsed = ApiKeySet::Parse(bad.content, "keys.txt");

        ASSERT_FALSE(parsed.ok()) << bad.content;
        EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(parsed.status().message().find(bad.expected), std::string::npos)
            << parsed.status().message();
        EXPECT_NE(parsed.status().message().find("keys.txt"), std::string::npos)
            << parsed.status().message();
    }
}

TEST(ApiKeys, MissingFileIsInvalidArgument) {
    Result<ApiKeySet> loaded = ApiKeySet::Load("/nonexistent/conveyor-keys.txt");

    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(loaded.status().message().find("/nonexistent/conveyor-keys.txt"), std::string::npos);
}

TEST(TenantName, AcceptsLettersDigitsAndPunctuation) {
    EXPECT_TRUE(IsValidTenantName("acme"));
    EXPECT_TRUE(IsValidTenantName("Team-7.eu_west"));
    EXPECT_TRUE(IsValidTenantName(std::string(64, 'a')));
}

TEST(TenantName, RejectsEmptyLongAndOtherCharacters) {
    EXPECT_FALSE(IsValidTenantName(""));
    EXPECT_FALSE(IsValidTenantName(std::string(65, 'a')));
    EXPECT_FALSE(IsValidTenantName("two words"));
    EXPECT_FALSE(IsValidTenantName("a/b"));
    EXPECT_FALSE(IsValidTenantName("caf\xc3\xa9"));
}

}  // namespace
}  // namespace conveyor
