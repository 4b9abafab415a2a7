"""bench_serverless.py's large request: the largest a serverless endpoint takes, in bytes
or in records, whichever limit comes first (a body over either is refused with a 413)."""

from benchmarks.bench_serverless import jsonlines_body


def test_the_large_request_stops_at_the_byte_limit():
    body = jsonlines_body(["abc"], size=13, records=100)
    assert body == b'"abc"\n"abc"\n'  # a third line would pass 13 bytes


def test_the_large_request_stops_at_the_record_limit():
    body = jsonlines_body(["a", "b"], size=1 << 20, records=10)
    assert body.count(b"\n") == 10 and body.startswith(b'"a"\n"b"\n')
