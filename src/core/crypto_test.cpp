#include "core/crypto.hpp"

#include <gtest/gtest.h>

#include <string>

namespace conveyor {
namespace {

TEST(Sha256, EmptyInput) {
    EXPECT_EQ(HexEncode(Sha256("")),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, FipsVectors) {
    EXPECT_EQ(HexEncode(Sha256("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(HexEncode(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(HexEncode(Sha256(std::string(1'000'000, 'a'))),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, ReturnsRawBytes) {
    EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(Sha256, HashesEmbeddedNul) {
    EXPECT_NE(Sha256(std::string("a\0b", 3)), Sha256("a"));
}

// Test cases 1 to 4, 6 and 7 of RFC 4231. Case 5 is left out because it
// checks a truncated MAC.
TEST(HmacSha256, Rfc4231Case1) {
    EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256, Rfc4231Case2) {
    EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, Rfc4231Case3) {
    EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\xaa'), std::string(50, '\xdd'))),
              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

TEST(HmacSha256, Rfc4231Case4) {
    std::string key;
    for (char c = 1; c <= 25; ++c) {
        key.push_back(c);
    }
    EXPECT_EQ(HexEncode(HmacSha256(key, std::string(50, '\xcd'))),
              "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256, Rfc4231Case6KeyLongerThanBlock) {
    EXPECT_EQ(HexEncode(HmacSha256(std::string(131, '\xaa'),
                                   "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, Rfc4231Case7DataLongerThanBlock) {
    EXPECT_EQ(HexEncode(HmacSha256(
                  std::string(131, '\xaa'),
                  "This is a test using a larger than block-size key and a larger than "
                  "block-size data. The key needs to be hashed before being used by the HMAC "
                  "algorithm.")),
              "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST(HmacSha256, DependsOnKey) {
    EXPECT_NE(HmacSha256("key-a", "data"), HmacSha256("key-b", "data"));
    EXPECT_EQ(HmacSha256("key-a", "data").size(), 32u);
}

TEST(ConstantTimeEqual, EqualStrings) {
    EXPECT_TRUE(ConstantTimeEqual("", ""));
    EXPECT_TRUE(ConstantTimeEqual("secret", "secret"));
    EXPECT_TRUE(ConstantTimeEqual(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST(ConstantTimeEqual, DifferentContent) {
    EXPECT_FALSE(ConstantTimeEqual("secret", "secreT"));
    EXPECT_FALSE(ConstantTimeEqual("secret", "Secret"));
    EXPECT_FALSE(ConstantTimeEqual(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(ConstantTimeEqual, DifferentLength) {
    EXPECT_FALSE(ConstantTimeEqual("secret", "secrets"));
    EXPECT_FALSE(ConstantTimeEqual("secret", "secre"));
    EXPECT_FALSE(ConstantTimeEqual("", "a"));
}

TEST(HexEncode, LowerCaseTwoDigitsPerByte) {
    EXPECT_EQ(HexEncode(""), "");
    EXPECT_EQ(HexEncode(std::string("\x00\x0f\x10\xab\xff", 5)), "000f10abff");
}

// RFC 4648, section 10.
TEST(Base64UrlEncode, Rfc4648Vectors) {
    EXPECT_EQ(Base64UrlEncode(""), "");
    EXPECT_EQ(Base64UrlEncode("f"), "Zg");
    EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
    EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
    EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
    EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
    EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST(Base64UrlEncode, UsesUrlSafeAlphabet) {
    // The standard alphabet would give "+/8" (with padding, "+/8=").
    EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
    EXPECT_EQ(Base64UrlEncode("\xff\xff\xff"), "____");
    EXPECT_EQ(Base64UrlEncode("\xfb\xef\xbe"), "----");
}

TEST(Base64UrlDecode, Rfc4648Vectors) {
    EXPECT_EQ(Base64UrlDecode(""), "");
    EXPECT_EQ(Base64UrlDecode("Zg"), "f");
    EXPECT_EQ(Base64UrlDecode("Zm8"), "fo");
    EXPECT_EQ(Base64UrlDecode("Zm9v"), "foo");
    EXPECT_EQ(Base64UrlDecode("Zm9vYg"), "foob");
    EXPECT_EQ(Base64UrlDecode("Zm9vYmE"), "fooba");
    EXPECT_EQ(Base64UrlDecode("Zm9vYmFy"), "foobar");
    EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
}

TEST(Base64Url, RoundTripsEveryLengthUpTo64) {
    for (std::size_t length = 0; length <= 64; ++length) {
        std::string data;
        for (std::size_t i = 0; i < length; ++i) {
            data.push_back(static_cast<char>((i * 37 + length * 11) % 256));
        }
        const std::string encoded = Base64UrlEncode(data);
        EXPECT_EQ(encoded.size(), (length * 4 + 2) / 3) << "length " << length;
        EXPECT_EQ(encoded.find_first_not_of(
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                  std::string::npos)
            << encoded;
        EXPECT_EQ(Base64UrlDecode(encoded), data) << "length " << length;
    }
}

TEST(Base64Url, RoundTripsEveryByteValue) {
    std::string data;
    for (int value = 0; value < 256; ++value) {
        data.push_back(static_cast<char>(value));
    }
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(data)), data);
}

TEST(Base64UrlDecode, RejectsPadding) {
    EXPECT_FALSE(Base64UrlDecode("Zg==").has_value());
    EXPECT_FALSE(Base64UrlDecode("Zm8=").has_value());
    EXPECT_FALSE(Base64UrlDecode("Zm9v====").has_value());
}

TEST(Base64UrlDecode, RejectsCharactersOutsideAlphabet) {
    using namespace std::string_literals;
    for (const std::string& text :
         {"Zm+v"s, "Zm/v"s, "Zm9 v"s, "Zm9\nv"s, "Zm.v"s, "Zm9v!"s, "Zm\x80v"s, "Zm\0v"s}) {
        EXPECT_FALSE(Base64UrlDecode(text).has_value()) << text;
    }
}

TEST(Base64UrlDecode, RejectsImpossibleLength) {
    EXPECT_FALSE(Base64UrlDecode("Z").has_value());
    EXPECT_FALSE(Base64UrlDecode("Zm9vY").has_value());
    EXPECT_FALSE(Base64UrlDecode("Zm9vYmFyZ").has_value());
}

TEST(Base64UrlDecode, RejectsNonZeroTrailingBits) {
    // "Zg" is the only encoding of "f". "Zh" to "Zv" carry stray low bits.
    EXPECT_FALSE(Base64UrlDecode("Zh").has_value());
    EXPECT_FALSE(Base64UrlDecode("Zv").has_value());
    // "Zm8" is the only encoding of "fo".
    EXPECT_FALSE(Base64UrlDecode("Zm9").has_value());
    EXPECT_FALSE(Base64UrlDecode("Zm_").has_value());
}

}  // namespace
}  // namespace conveyor
