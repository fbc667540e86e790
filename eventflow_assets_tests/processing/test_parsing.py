"""Parsing and rejection rules, on hand-written records with hand-written expectations."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pyspark.sql.types import (BinaryType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

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
    (GOOD_ORDER.replace('"price":149.99', '"price":0'), "invalid value: price must be > 0: 0.000000"),
    (GOOD_ORDER.replace('"price":149.99', '"price":-5.5'), "invalid value: price must be > 0: -5.500000"),
    (GOOD_ORDER.replace('"price":149.99', '"price":149.999'), "invalid value: price has more than 2 decimals"),
    (GOOD_ORDER.replace('"price":149.99', '"price":1e30'), "invalid value: price is out of range"),
    (GOOD_ORDER.replace('"EUR"', '"XXX"'), "invalid value: currency must be one of USD, EUR, GBP, CAD, AUD: XXX"),
    (GOOD_ORDER.replace("2026-11-24T11:00:05.123Z", "yesterday"),
     "invalid value: timestamp is not ISO-8601 with offset: yesterday"),
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
