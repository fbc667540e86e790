"""Parsing and rejection rules, on hand-written records with hand-written expectations."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from eventflow_assets.processing.parsing import parse, rejected, valid

KAFKA_SCHEMA = StructType([
    StructField("key", BinaryType()), StructField("value", BinaryType()), StructField("topic", StringType()),
    StructField("partition", IntegerType()), StructField("offset", LongType()),
    StructField("timestamp", TimestampType()), StructField("timestampType", IntegerType()),
])
KAFKA_TS = datetime(2026, 11, 24, 11, 0, 6, tzinfo=timezone.utc)
OID = "3f1c2a9e-8b7d-4c6e-9a1b-2c3d4e5f6a7b"
EID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
GOOD_ORDER = f'{{"orderId":"{OID}","userId":"u123","productId":"p42","price":149.99,"currency":"EUR","timestamp":"2026-11-24T11:00:05.123Z"}}'
GOOD_LOGIN = f'{{"eventId":"{EID}","userId":"u1","eventType":"LOGIN","timestamp":"2026-11-24T11:00:00.000Z"}}'
GOOD_VIEW = f'{{"eventId":"{EID}","userId":"u1","productId":"p1","timestamp":"2026-11-24T11:00:01.000Z"}}'
GOOD = {"orders": GOOD_ORDER, "user-events": GOOD_LOGIN, "product-view": GOOD_VIEW}


def _records(spark, topic, values):
    rows = [(b"u123", v if isinstance(v, bytes) else v.encode(), topic, 1, i, KAFKA_TS, 0) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def test_valid_order_is_typed(spark):
    out = valid(parse(_records(spark, "orders", [GOOD_ORDER]), "orders")).collect()
    assert len(out) == 1
    row = out[0].asDict()
    assert row["order_id"] == OID and row["user_id"] == "u123" and row["product_id"] == "p42"
    assert row["price"] == Decimal("149.99") and row["currency"] == "EUR"
    assert row["event_time"] == datetime(2026, 11, 24, 11, 0, 5, 123000)  # session time zone is UTC
    assert (row["topic"], row["partition"], row["offset"]) == ("orders", 1, 0)


def test_unknown_fields_are_ignored_and_integer_price_accepted(spark):
    value = GOOD_ORDER.replace('"price":149.99', '"price":150').replace("{", '{"extra":[1,2],', 1)
    out = valid(parse(_records(spark, "orders", [value]), "orders")).collect()
    assert [r["price"] for r in out] == [Decimal("150.00")]


ORDER_CASES = [
    (b"\xff\xfe not utf-8", "not UTF-8 text"),
    ('{"orderId":', "invalid JSON"),
    ("[1, 2]", "not a JSON object"),
    ("null", "not a JSON object"),
    (GOOD_ORDER.replace('"userId":"u123",', ""), "missing field: userId"),
    (GOOD_ORDER.replace('"userId":"u123"', '"userId":null'), "missing field: userId"),
    (GOOD_ORDER.replace('"userId":"u123"', '"userId":123'), "wrong type: userId must be a string"),
    (GOOD_ORDER.replace('"price":149.99', '"price":"149.99"'), "wrong type: price must be a JSON number"),
    (GOOD_ORDER.replace(OID, "order-1"), "invalid value: orderId is not a UUID: order-1"),
    (GOOD_ORDER.replace('"price":149.99', '"price":0'), "invalid value: price must be > 0: 0"),
    (GOOD_ORDER.replace('"price":149.99', '"price":-5.5'), "invalid value: price must be > 0: -5.5"),
    (GOOD_ORDER.replace('"price":149.99', '"price":149.999'), "invalid value: price has more than 2 decimals: 149.999"),
    (GOOD_ORDER.replace('"price":149.99', '"price":1e30'), "invalid value: price does not fit numeric(12,2): 1e30"),
    (GOOD_ORDER.replace('"EUR"', '"XXX"'), "invalid value: currency must be one of USD, EUR, GBP, CAD, AUD: XXX"),
    (GOOD_ORDER.replace("2026-11-24T11:00:05.123Z", "yesterday"),
     "invalid value: timestamp is not ISO-8601 UTC with milliseconds (yyyy-MM-ddTHH:mm:ss.SSSZ): yesterday"),
]


def test_every_broken_order_is_rejected_with_its_reason(spark):
    parsed = parse(_records(spark, "orders", [v for v, _ in ORDER_CASES] + [GOOD_ORDER]), "orders")
    out = {r["offset"]: r.asDict() for r in rejected(parsed).collect()}
    assert {o: out[o]["reject_reason"] for o in out} == {i: reason for i, (_, reason) in enumerate(ORDER_CASES)}
    assert valid(parsed).count() == 1
    first = out[1]
    assert (first["topic"], first["partition"], first["record_key"], first["payload"], first["payload_bytes"]) == \
        ("orders", 1, "u123", '{"orderId":', 11)


def test_user_events_and_views(spark):
    login = f'{{"eventId":"{EID}","userId":"u1","eventType":"LOGIN","timestamp":"2026-11-24T11:00:00.000Z"}}'
    view = f'{{"eventId":"{EID}","userId":"u1","productId":"p1","timestamp":"2026-11-24T11:00:01.000Z"}}'
    ue = parse(_records(spark, "user-events", [login, login.replace("LOGIN", "PURCHASE")]), "user-events")
    assert [r["event_type"] for r in valid(ue).collect()] == ["LOGIN"]
    assert [r["reject_reason"] for r in rejected(ue).collect()] == [
        "invalid value: eventType must be one of LOGIN, LOGOUT, SIGNUP: PURCHASE"]
    pv = parse(_records(spark, "product-view", [view, view.replace('"productId":"p1",', "")]), "product-view")
    assert [(r["event_id"], r["product_id"]) for r in valid(pv).collect()] == [(EID, "p1")]
    assert [r["reject_reason"] for r in rejected(pv).collect()] == ["missing field: productId"]


def test_payload_is_bounded_but_size_kept(spark):
    huge = GOOD_ORDER[:-1] + ',"pad":"' + "x" * 10_000 + '","price":"bad"}'
    row = rejected(parse(_records(spark, "orders", [huge]), "orders")).collect()[0]
    assert len(row["payload"]) == 4096
    assert row["payload_bytes"] == len(huge)


def test_bytes_postgres_cannot_store_are_kept_printable(spark):
    nul_user = GOOD_ORDER.replace('"userId":"u123"', '"userId":"u\\u0000x"')
    records = _records(spark, "orders", [b"\xff\x00\xfe", nul_user, b""])
    out = {r["offset"]: r for r in rejected(parse(records, "orders")).collect()}
    assert out[0]["reject_reason"] == "not UTF-8 text"
    assert out[0]["payload"] == "base64:/wD+"
    assert out[1]["reject_reason"] == "invalid value: userId contains NUL"
    assert out[2]["reject_reason"] == "empty record"
    assert all("\x00" not in (r["payload"] + (r["record_key"] or "")) for r in out.values())


def _order(price: str = "149.99", timestamp: str = "2026-11-24T11:00:05.123Z") -> str:
    return GOOD_ORDER.replace('"price":149.99', f'"price":{price}').replace("2026-11-24T11:00:05.123Z", timestamp)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _micros(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _reasons(spark, topic, values) -> dict[int, str]:
    """{offset: reject reason} of ``values`` as records of ``topic``; valid records are absent."""
    return {r["offset"]: r["reject_reason"] for r in rejected(parse(_records(spark, topic, values), topic)).collect()}


PRICE_CASES = [
    ("10000000000", "invalid value: price does not fit numeric(12,2): 10000000000"),
    ("10000000000.00", "invalid value: price does not fit numeric(12,2): 10000000000"),
    ("9999999999.995", "invalid value: price does not fit numeric(12,2): 9999999999.995"),
    ("1e309", "invalid value: price does not fit numeric(12,2): 1e309"),
    ("-1e309", "invalid value: price must be > 0: -1e309"),
    ("-0", "invalid value: price must be > 0: 0"),
    ("-0.0", "invalid value: price must be > 0: 0"),
    ("NaN", "invalid JSON"),
    ("Infinity", "invalid JSON"),
    ('"NaN"', "wrong type: price must be a JSON number"),
    ('"1e309"', "wrong type: price must be a JSON number"),
    ("true", "wrong type: price must be a JSON number"),
    ("9999999999.991", "invalid value: price has more than 2 decimals: 9999999999.991"),
    ("1.0000001", "invalid value: price has more than 2 decimals: 1.0000001"),
    ("0.010000000000000000001", "invalid value: price has more than 2 decimals: 0.010000000000000000001"),
    ("5e-3", "invalid value: price has more than 2 decimals: 5e-3"),
    ("1e-30", "invalid value: price has more than 2 decimals: 1e-30"),
    ("1e-400", "invalid value: price has more than 2 decimals: 1e-400"),
    ("-0e0", "invalid value: price must be > 0: -0e0"),
    # Issue 14: beyond 38 digits or in exponent notation the variant holds a DOUBLE (here 100.0
    # and 149.99): the decimals are counted on the number's own text.
    ("100.00000000000000000000000000000000000001",
     "invalid value: price has more than 2 decimals: 100.00000000000000000000000000000000000001"),
    ("1.4999000000000000001e2", "invalid value: price has more than 2 decimals: 1.4999000000000000001e2"),
    ("14999000000000000000000000000000000000001E-38",
     "invalid value: price has more than 2 decimals: 14999000000000000000000000000000000000001E-38"),
    ("1e99999999999", "invalid value: price does not fit numeric(12,2): 1e99999999999"),
    ("1e-99999999999", "invalid value: price has more than 2 decimals: 1e-99999999999"),
]


def test_every_price_that_does_not_fit_is_rejected_and_the_valid_path_never_fails(spark):
    """Issue 14: a price of 1e10 was rejected, yet the valid path still cast it to decimal(12,2)
    and the query failed with NUMERIC_VALUE_OUT_OF_RANGE. Every column of every parsed row is
    computed here, behind an observe() as in the streaming queries (it stops Spark from filtering
    the rejects out before the typed columns are computed)."""
    values = [_order(price) for price, _ in PRICE_CASES]
    parsed = parse(_records(spark, "orders", values), "orders").observe("parse:orders", F.count(F.lit(1)).alias("n"))
    rows = parsed.collect()
    assert {r["offset"]: r["reject_reason"] for r in rows} == {i: reason for i, (_, reason) in enumerate(PRICE_CASES)}
    assert valid(parsed).collect() == []


def test_prices_at_the_limits_are_accepted_exactly(spark):
    """At most 2 decimals is the value's: zeros after them change nothing (docs/streaming.md)."""
    prices = ["9999999999.99", "0.01", "149.990", "1.5e2", "1.4999e2", "42", "1E+3", "0.1e1",
              "149.99000000000000000000000000000000000000000", "1.4999000000000000000000000000000000000000e2",
              "999999999999E-2"]
    expected = ["9999999999.99", "0.01", "149.99", "150.00", "149.99", "42.00", "1000.00", "1.00", "149.99", "149.99",
                "9999999999.99"]
    for fast in (True, False):
        out = valid(parse(_records(spark, "orders", [_order(p) for p in prices]), "orders", fast_path=fast)).collect()
        assert sorted((r["offset"], r["price"]) for r in out) == [(i, Decimal(e)) for i, e in enumerate(expected)]


def test_a_long_price_is_judged_on_the_top_level_price_text(spark):
    """The price's own text is found whatever else the record holds: a nested ``price``,
    ``"price":`` inside a string, escaped quotes and backslashes before it, an escaped name."""
    long_price = "1.49990000000000000000000000000000000000001e2"

    def order(price, before="", name='"price"'):
        return GOOD_ORDER.replace('"price":149.99', f'{before}{name}:{price}')

    values = [
        order(long_price, '"n":{"price":1.5e2},"s":"\\"price\\":1.5e2",'),
        order("1.5e2", '"n":{"price":' + long_price + '},'),
        order("1.5e2", '"s":"\\\\\\"price\\":' + long_price + ' \\\\",'),
        order(long_price, name='"pr\\u0069ce"'),
        order("1.5e2", name='"pr\\u0069ce"'),
    ]
    decimals = f"invalid value: price has more than 2 decimals: {long_price}"
    for fast in (True, False):
        parsed = parse(_records(spark, "orders", values), "orders", fast_path=fast)
        out = {r["offset"]: (r["reject_reason"], r["price"]) for r in parsed.collect()}
        assert out == {0: (decimals, Decimal("149.99")), 1: (None, Decimal("150.00")), 2: (None, Decimal("150.00")),
                       3: (decimals, Decimal("149.99")), 4: (None, Decimal("150.00"))}


def test_timestamps_in_other_iso_forms_are_rejected(spark):
    """docs/contracts.md: "ISO-8601 UTC with milliseconds" (``2026-11-24T11:00:05.123Z``), that form only."""
    form = "invalid value: timestamp is not ISO-8601 UTC with milliseconds (yyyy-MM-ddTHH:mm:ss.SSSZ): "
    stamps = ["2026-11-24T11:00:05.123+00:00", "2026-11-24T13:00:05.123+02:00", "2026-11-24T11:00:05.123",
              "2026-11-24T11:00:05.123z", "2026-11-24T11:00:05Z", "2026-11-24T11:00:05.12Z",
              "2026-11-24T11:00:05.1234Z", "2026-11-24 11:00:05.123Z", "+10000-11-20T10:03:00.000Z"]
    expected = {i: form + s for i, s in enumerate(stamps)}
    expected[len(stamps)] = "invalid value: timestamp is no such date and time: 2026-02-30T11:00:05.123Z"
    expected[len(stamps) + 1] = form + "2026-11-24T11:00:05.123Z\n"
    values = [_order(timestamp=s) for s in stamps + ["2026-02-30T11:00:05.123Z", "2026-11-24T11:00:05.123Z\\n"]]
    for fast in (True, False):
        parsed = parse(_records(spark, "orders", values), "orders", fast_path=fast)
        assert {r["offset"]: r["reject_reason"] for r in rejected(parsed).collect()} == expected


def test_a_uuid_in_any_case_and_version_is_accepted_in_lower_case(spark):
    ids = [OID.upper(), OID[:14] + "7" + OID[15:], "00000000-0000-1000-8000-00000000000A"]
    values = [GOOD_ORDER.replace(OID, i) for i in ids] + [GOOD_ORDER.replace(OID, OID + "\\n")]
    for fast in (True, False):
        parsed = parse(_records(spark, "orders", values), "orders", fast_path=fast)
        assert [r["order_id"] for r in valid(parsed).orderBy("offset").collect()] == [i.lower() for i in ids]
        assert [r["reject_reason"] for r in rejected(parsed).collect()] == [
            f"invalid value: orderId is not a UUID: {OID}\n"]


def test_event_time_ahead_of_the_processing_clock_is_rejected_on_every_topic(spark):
    """Issue 14: an order dated in the year 10000 was accepted and moved the watermark there, after
    which every on-time order was dropped as late. At most 1 hour ahead is valid (docs/contracts.md)."""
    now = datetime.now(UTC)
    ahead = "invalid value: timestamp is more than 60 min ahead of the processing clock: "
    cases = [
        ("9999-12-31T23:59:59.999Z", ahead + "9999-12-31T23:59:59.999Z"),
        (_iso(now + timedelta(hours=2)), ahead + _iso(now + timedelta(hours=2))),
        (_iso(now + timedelta(minutes=70)), ahead + _iso(now + timedelta(minutes=70))),
        (_iso(now + timedelta(minutes=59)), None),
        (_iso(now), None),
        ("2026-11-24T11:00:05.123Z", None),
        ("0001-01-01T00:00:00.000Z", None),
        ("0000-12-31T23:59:59.999Z", "invalid value: timestamp is before year 1: 0000-12-31T23:59:59.999Z"),
    ]
    expected = {i: reason for i, (_, reason) in enumerate(cases) if reason}
    for topic, good in GOOD.items():
        stamp = good[good.index('"timestamp":"') + 13:-2]
        values = [good.replace(stamp, ts) for ts, _ in cases]
        assert _reasons(spark, topic, values) == expected, topic
    # As microseconds since the epoch: PySpark cannot collect a timestamp of the year 1.
    out = valid(parse(_records(spark, "orders", [_order(timestamp=ts) for ts, _ in cases]), "orders")) \
        .select("offset", F.unix_micros("event_time").alias("micros")).collect()
    millis = now.replace(microsecond=now.microsecond // 1000 * 1000)
    assert sorted((r["offset"], r["micros"]) for r in out) == [
        (3, _micros(millis + timedelta(minutes=59))), (4, _micros(millis)),
        (5, _micros(datetime(2026, 11, 24, 11, 0, 5, 123000, tzinfo=UTC))), (6, _micros(datetime(1, 1, 1, tzinfo=UTC)))]


def test_a_record_is_exactly_one_json_value_on_every_topic(spark):
    """Issue 14: ``{...} xyz`` and ``{...}{...}`` were used as valid records on all three topics."""
    after = "invalid JSON: text after the JSON value"
    for topic, good in GOOD.items():
        values = [good + " xyz", good + good, good + "\n" + good, good + "]", good + "}", good + ',"a":1}', good + ",",
                  good + "\x00", good + " \n\t\r", " \n" + good]
        assert _reasons(spark, topic, values) == {i: after for i in range(8)}, topic


def test_an_exponent_price_beside_many_escapes_is_read(spark):
    """Reading a price's text rewrites the whole record with regular expressions: 100,000 escapes
    (quotes, backslashes) in another field must neither overflow Java's regex stack (a pattern
    repeating an alternation recurses once per repetition) nor move the price."""
    pad = '\\"\\\\' * 50_000
    prices = ("1.5e2", "1.4999e2", "1.4999000000000000001e2")
    values = [GOOD_ORDER.replace('"price":149.99', f'"pad":"{pad}","price":{p}') for p in prices]
    parsed = parse(_records(spark, "orders", values), "orders")
    out = {r["offset"]: (r["reject_reason"], r["price"]) for r in parsed.collect()}
    assert out == {0: (None, Decimal("150.00")), 1: (None, Decimal("149.99")),
                   2: ("invalid value: price has more than 2 decimals: 1.4999000000000000001e2", Decimal("149.99"))}
