#!/usr/bin/env python3
"""Write the seed corpus of the fuzz targets into tests/fuzz/corpus/.

Run it again after changing a seed below; it replaces the files it owns
(seed-*) and leaves any other file in the corpus folders alone. The cursor
seeds are signed with the key and fingerprint that cursor_fuzzer.cpp uses,
so they decode there.
"""

import base64
import hashlib
import hmac
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CURSOR_KEY = b"fuzz-cursor-key"
CURSOR_FINGERPRINT = b"0123456789ab"

TASK_ID = "0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"

SUBMISSIONS = [
    b'{"text":"hello world"}',
    b'{"text":""}',
    b'{"text":"The quick brown fox","type":"text.analyze"}',
    b'{"text":"a b c","params":{"top_n":3,"language":"german","stem":true}}',
    b'{"text":"x","params":{"top_n":100,"language":"turkish","stem":false},"max_attempts":20}',
    b'{"text":"x","metadata":{"customer":"acme","k":"v"}}',
    b'{"text":"x","max_attempts":1,"metadata":{}}',
    b'{"metadata":{"a":"b"},"max_attempts":3,"params":{},"type":"text.analyze","text":"order"}',
    b'{"text":"x","params":{"fail_attempts":2}}',
    b'{"text":"x","params":{"fail_permanently":true,"delay_ms":600000}}',
    b'{"text":"x","params":{"delay_ms":0,"fail_attempts":20}}',
    b'{"text":"\\u0000\\u00e9\\ud83d\\ude00"}',
    b'{"text":"\\ud800"}',
    b'{"text":"\\udc00\\ud800"}',
    b'{"text":"a","text":"b"}',
    b'{"text":"a","params":{"top_n":1,"top_n":2}}',
    b'{"text":"a","type":"image.resize"}',
    b'{"text":1}',
    b'{"text":"a","params":[]}',
    b'{"text":"a","params":{"top_n":5.0}}',
    b'{"text":"a","params":{"top_n":1e300}}',
    b'{"text":"a","max_attempts":-1}',
    b'{"text":"a","max_attempts":18446744073709551615}',
    b'{"text":"a","metadata":{"":"empty key"}}',
    b'{"text":"a","metadata":{"n":1}}',
    b'{"text":"a","extra":true}',
    b'{"txt":"typo"}',
    b'[]',
    b'"text"',
    b'{"text":"a"',
    b'{"text":"\xff\xfe"}',
    b'  {\n  "text" : "spaced" ,\n "params" : { "language" : "english" }\n}\n',
    b'{"text":"a","params":{"language":"klingon"}}',
    b'{"text":"' + b"a" * 300 + b'"}',
    b'{"text":"a","params":{"nested":{"deep":[1,[2,[3]]]}}}',
]

HTTP_REQUESTS = [
    b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"HEAD /v1/tasks HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /v1/tasks?status=PENDING,FAILED&limit=5&order=asc HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /v1/tasks?cursor=abc&created_after=2026-12-04T15:11:31.123Z HTTP/1.1\r\n\r\n",
    ("GET /v1/tasks/" + TASK_ID + "?wait=0.5&include=text HTTP/1.1\r\n\r\n").encode(),
    ("POST /v1/tasks/" + TASK_ID + "/cancel HTTP/1.1\r\nContent-Length: 0\r\n\r\n").encode(),
    ("POST /v1/tasks/" + TASK_ID + "/retry HTTP/1.1\r\n\r\n").encode(),
    b'POST /v1/tasks HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"text":"hi"}',
    b'POST /v1/tasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"tex\r\n8\r\nt":"hi"}\r\n0\r\n\r\n',
    b"POST /v1/tasks HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    b"POST /v1/tasks HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/tasks HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
    b"POST /v1/tasks HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET http://example/v1/tasks?limit=1 HTTP/1.1\r\n\r\n",
    b"GET /v1/tasks/a%2Fb/cancel HTTP/1.1\r\n\r\n",
    b"GET /v1/tasks?%zz=1 HTTP/1.1\r\n\r\n",
    b"GET /v1/tasks?=1&limit=2&limit=3 HTTP/1.1\r\n\r\n",
    b"OPTIONS /v1/tasks HTTP/1.1\r\n\r\n",
    b"DELETE /healthz HTTP/1.1\r\n\r\n",
    b"GET * HTTP/1.1\r\n\r\n",
    b"GET relative HTTP/1.1\r\n\r\n",
    b"GET /nope HTTP/1.1\r\nX-Request-Id: abc-123\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nX:\r\nX:\r\nX:\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\nPOST /v1/tasks HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /healthz HTTP/1.0\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n",
    b"POST /v1/tasks HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
    b"POST /v1/tasks HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"GET /v1/tasks/ HTTP/1.1\r\n\r\n",
    b"GET /v1/tasks/x/y/z HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: " + b"a" * 200 + b"\r\n\r\n",
    b"\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
    b"GET //x/metrics HTTP/1.1\r\n\r\nGET http://h//v1/tasks HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
    b"GET /healthz HTTP/2.0\r\n\r\nGET /healthz HTTP/1.2\r\n\r\n",
    b"POST /v1/tasks HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/tasks HTTP/1.1\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 0\r\n\r\n",
]

ANALYZER_TEXTS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps.",
    "Don\u2019t stop, DON'T stop!",
    "Stra\u00dfe STRASSE stra\u00dfe",
    "\u0130stanbul ISTANBUL istanbul",
    "running runs ran runner run",
    "\u4eca\u65e5\u306f\u826f\u3044\u5929\u6c17\u3067\u3059\u3002\u6771\u4eac",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "caf\u00e9 cafe\u0301 CAF\u00c9",
    "123 4.5 6,000 abc123 x1",
    "\U0001f600 \U0001f44d\U0001f3fd emoji only",
    "",
    "a",
    "e.g. U.S.A. can't won't",
    "word\u00adbreak soft\u00adhyphen",
    "\ufb01nance \ufb02ow \u2460",
    "\u041c\u043e\u0441\u043a\u0432\u0430 \u043c\u043e\u0441\u043a\u0432\u0430 \u041c\u041e\u0421\u041a\u0412\u0410",
    "Hello\tworld\nnew\r\nline",
    "a_b a-b a'b a.b a:b",
    "the the the and and of",
]

ANALYZER_BYTES = [
    b"\xff\xfe invalid utf8 \xc3\x28 here",
    b"\xe2\x82 truncated",
    b"ascii \x00 with nul",
]


def write(folder, items):
    target = HERE / "corpus" / folder
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("seed-*"):
        old.unlink()
    for index, data in enumerate(items):
        (target / f"seed-{index:02d}").write_bytes(data)


def cursor(created_at, task_id):
    payload = b"c1|" + CURSOR_FINGERPRINT.hex().encode() + b"|" + str(created_at).encode()
    payload += b"|" + task_id.encode()
    mac = hmac.new(CURSOR_KEY, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=")


def cursor_seeds():
    seeds = []
    for created_at in (0, 1764861091123, -1, 9223372036854775807):
        valid = cursor(created_at, TASK_ID)
        seeds.append(b"\x00" + valid)
        seeds.append(b"\x00" + valid[:-1])
        seeds.append(b"\x00" + valid + b"A")
        seeds.append(b"\x00" + valid[:10] + b"-" + valid[11:])
    seeds.append(b"\x00" + cursor(5, TASK_ID.upper()))
    seeds.append(b"\x00" + cursor(5, "not-a-uuid"))
    seeds.append(b"\x00")
    seeds.append(b"\x00====")
    seeds.append(b"\x00" + b"A" * 600)
    seeds.append(b"\x01")
    seeds.append(b"\x01\x00\x00\x01\x93\xa1\xb2\x7c\x3d0123456789abcdef0123456789abcdef")
    seeds.append(b"\x01\xff\xff\xff\xff\xff\xff\xff\xff" + b"\xaa" * 32 + b"fp")
    seeds.append(b"\x01" + b"\x7f" * 40 + b"|" * 20)
    return seeds


def main():
    write("submission", SUBMISSIONS)
    # The first byte sets the read size: small values feed the parser in
    # pieces, 0xC0 and above in one read.
    write("http_request", [bytes([(index * 37) % 256]) + request
                           for index, request in enumerate(HTTP_REQUESTS)])
    selectors = [0x00, 0x01, 0x06, 0x13, 0x1E, 0x40, 0xF0, 0xF5]
    texts = [text.encode("utf-8") for text in ANALYZER_TEXTS] + ANALYZER_BYTES
    write("analyzer", [bytes([selectors[index % len(selectors)]]) + text
                       for index, text in enumerate(texts)])
    write("cursor", cursor_seeds())


if __name__ == "__main__":
    main()
