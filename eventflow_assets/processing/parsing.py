"""Parse Kafka records into typed events, or say exactly why a record is rejected.

Pure DataFrame -> DataFrame functions over the Kafka source schema (key, value, topic,
partition, offset, timestamp, timestampType), used by the streaming queries and tested directly.

Validation uses Spark's VARIANT (``try_parse_json``) rather than ``from_json``: ``from_json``
silently turns a JSON number into a string field and a numeric string into a decimal, so it
cannot see a wrong type. Every check is a native expression; nothing runs in Python.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventflow_assets.ingestion.events import (CURRENCIES, ORDERS, PRODUCT_VIEW, REQUIRED_FIELDS, USER_EVENT_TYPES,
                                               USER_EVENTS)

MAX_PAYLOAD_CHARS = 4096
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX"
MAX_PRICE = 9_999_999_999.99  # numeric(12, 2)
_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"




def _type_of(v: Column, name: str) -> Column:
    return F.schema_of_variant(F.variant_get(v, f"$.{name}", "variant"))


def _string(v: Column, name: str) -> Column:
    return F.try_variant_get(v, f"$.{name}", "string")


def _reason(topic: str, v: Column) -> Column:
    """The first broken rule, as text; NULL when the record is valid."""
    fields = REQUIRED_FIELDS[topic]
    rules: list[tuple[Column, Column | str]] = [
        (v.isNull(), "invalid JSON"),
        (~F.startswith(F.schema_of_variant(v), F.lit("OBJECT")), "not a JSON object"),
    ]
    for name in fields:
        present = F.variant_get(v, f"$.{name}", "variant")
        rules.append((present.isNull() | F.is_variant_null(present), f"missing field: {name}"))
    for name in fields:
        if name == "price":
            kind = _type_of(v, name)
            is_number = (F.startswith(kind, F.lit("BIGINT")) | F.startswith(kind, F.lit("DOUBLE"))
                         | F.startswith(kind, F.lit("DECIMAL")))
            rules.append((~is_number, "wrong type: price must be a JSON number"))
        else:
            rules.append((_type_of(v, name) != F.lit("STRING"), f"wrong type: {name} must be a string"))
    for name in fields:
        if name != "price":  # PostgreSQL text cannot hold NUL
            rules.append((F.contains(_string(v, name), F.lit("\u0000")), f"invalid value: {name} contains NUL"))
    id_field = "orderId" if topic == ORDERS else "eventId"
    rules.append((~_string(v, id_field).rlike(_UUID),
                  F.concat(F.lit(f"invalid value: {id_field} is not a UUID: "), _string(v, id_field))))
    rules.append((F.length(_string(v, "userId")) == 0, "invalid value: userId is empty"))
    if topic == USER_EVENTS:
        rules.append((~_string(v, "eventType").isin(*USER_EVENT_TYPES),
                      F.concat(F.lit(f"invalid value: eventType must be one of {', '.join(USER_EVENT_TYPES)}: "),
                               _string(v, "eventType"))))
    if topic in (PRODUCT_VIEW, ORDERS):
        rules.append((F.length(_string(v, "productId")) == 0, "invalid value: productId is empty"))
    if topic == ORDERS:
        exact = F.try_variant_get(v, "$.price", "decimal(38,6)")
        rules += [
            (exact.isNull() | (exact > F.lit(MAX_PRICE)), "invalid value: price is out of range"),
            (exact <= 0, F.concat(F.lit("invalid value: price must be > 0: "), exact.cast("string"))),
            (exact != F.round(exact, 2), "invalid value: price has more than 2 decimals"),
            (~_string(v, "currency").isin(*CURRENCIES),
             F.concat(F.lit(f"invalid value: currency must be one of {', '.join(CURRENCIES)}: "),
                      _string(v, "currency"))),
        ]
    rules.append((F.try_to_timestamp(_string(v, "timestamp"), F.lit(TIMESTAMP_FORMAT)).isNull(),
                  F.concat(F.lit("invalid value: timestamp is not ISO-8601 with offset: "),
                           _string(v, "timestamp"))))
    expr = None
    for condition, message in rules:
        message = F.lit(message) if isinstance(message, str) else message
        expr = F.when(condition, message) if expr is None else expr.when(condition, message)
    return expr


def _printable(binary: Column) -> Column:
    """Bytes as text PostgreSQL accepts: UTF-8 as is (NUL escaped), anything else as base64."""
    text = F.when(F.is_valid_utf8(binary), binary.cast("string")) \
        .otherwise(F.concat(F.lit("base64:"), F.base64(binary)))
    return F.regexp_replace(text, "\u0000", "\\\\u0000")


def parse(records: DataFrame, topic: str) -> DataFrame:
    """Kafka records of one topic -> typed event columns plus ``reject_reason`` (NULL = valid).

    Output: the event's fields in snake_case (``order_id``, ``user_id``, ``price`` decimal(12,2),
    ``event_time`` timestamp, ...), ``topic``, ``partition``, ``offset``, ``kafka_timestamp``,
    ``record_key``, ``payload`` (bounded), ``payload_bytes`` and ``reject_reason``.
    """
    text = F.when(F.is_valid_utf8(F.col("value")), F.col("value").cast("string"))
    base = records.select(
        F.col("topic"), F.col("partition"), F.col("offset"), F.col("timestamp").alias("kafka_timestamp"),
        _printable(F.col("key")).alias("record_key"),
        F.coalesce(F.substring(_printable(F.col("value")), 1, MAX_PAYLOAD_CHARS), F.lit("")).alias("payload"),
        F.coalesce(F.octet_length(F.col("value")), F.lit(0)).alias("payload_bytes"),
        text.alias("_text"),
        F.try_parse_json(text).alias("v"),
    )
    v = F.col("v")
    reason = (F.when(F.col("payload_bytes") == 0, F.lit("empty record"))
              .when(F.col("_text").isNull(), F.lit("not UTF-8 text"))
              .otherwise(_reason(topic, v)))
    columns = [
        (F.try_variant_get(v, "$.orderId", "string") if topic == ORDERS
         else F.try_variant_get(v, "$.eventId", "string")).alias("order_id" if topic == ORDERS else "event_id"),
        _string(v, "userId").alias("user_id"),
    ]
    if topic == USER_EVENTS:
        columns.append(_string(v, "eventType").alias("event_type"))
    else:
        columns.append(_string(v, "productId").alias("product_id"))
    if topic == ORDERS:
        columns += [F.try_variant_get(v, "$.price", "decimal(12,2)").alias("price"),
                    _string(v, "currency").alias("currency")]
    columns.append(F.try_to_timestamp(_string(v, "timestamp"), F.lit(TIMESTAMP_FORMAT)).alias("event_time"))
    return base.select(*columns, "topic", "partition", "offset", "kafka_timestamp", "record_key", "payload",
                       "payload_bytes", reason.alias("reject_reason"))


def valid(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNull()).drop("reject_reason", "payload", "payload_bytes",
                                                              "record_key")


REJECT_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp", "record_key", "payload", "payload_bytes",
                  "reject_reason")


def rejected(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNotNull()).select(*REJECT_COLUMNS)
