"""Parse Kafka records into typed events, or say exactly why a record is rejected.

Pure DataFrame -> DataFrame functions over the Kafka source schema (key, value, topic,
partition, offset, timestamp, timestampType), used by the streaming queries and tested directly.

Validation uses Spark's VARIANT (``try_parse_json``) rather than ``from_json``: ``from_json``
silently turns a JSON number into a string field and a numeric string into a decimal, so it
cannot see a wrong type. Every check is a native expression; nothing runs in Python.

One rule decides validity (:func:`_reason`), and the valid and the rejects paths both read its
verdict. Typed values come only from ``try_`` conversions (NULL, never an error) and the rule
rejects any NULL or out-of-range one, so no record can make the valid path fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from eventflow_assets.ingestion.events import (
    CURRENCIES,
    ORDERS,
    PRODUCT_VIEW,
    REQUIRED_FIELDS,
    USER_EVENT_TYPES,
    USER_EVENTS,
)

MAX_PAYLOAD_CHARS = 4096
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSS]XXX"
PRICE_TYPE = "numeric(12,2)"  # orders_raw.price
PRICE_DECIMAL = "decimal(12,2)"  # the same in Spark
# An event time further ahead of the processing clock is invalid (docs/contracts.md): no record may
# carry the watermark into the future, where every on-time event would be dropped as late.
MAX_CLOCK_SKEW = timedelta(hours=1)
# Where Python's datetime and PostgreSQL's timestamptz (no year 0) both start.
MIN_EVENT_TIME = datetime(1, 1, 1, tzinfo=UTC)
# Any UUID in its standard text form, any version, either case (RFC 9562: case-insensitive on
# input); ids leave the parser in lower case, so one order written both ways counts once.
_UUID_TEXT = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID = "^" + _UUID_TEXT + r"\z"  # \z, not $: $ also matches before a final line break
# docs/contracts.md: "ISO-8601 UTC with milliseconds", exactly this form: no offset (not even +00:00),
# no other precision, upper-case Z. TIMESTAMP_FORMAT then reads what passed.
_TIMESTAMP_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"


def _v(name: str) -> Column:
    return F.col(f"_v_{name}")


def _t(name: str) -> Column:
    return F.col(f"_t_{name}")


def _s(name: str) -> Column:
    return F.col(f"_s_{name}")


def _one_json_value(frame: DataFrame) -> DataFrame:
    """Adds ``v``, the array ``[<record>, <digest>]``: NULL unless ``_text`` is exactly one JSON value.

    ``try_parse_json`` reads the first value and ignores whatever follows it (``{...} xyz``,
    ``{...}{...}``). So the text is parsed inside ``[<text>,"<its SHA-256>"]``: the digest comes
    back as the second element only if the first element took all of the text, because a text
    cannot contain its own digest. The record stays in the array (``$[0]``): taking it out
    would copy it. The array is one more level under Jackson's nesting limit of 1000: a record
    nested exactly 1000 deep is rejected as if text followed it.
    """
    digest = F.col("_digest")
    wrapped = frame.withColumn("_wrapped", F.try_parse_json(
        F.concat(F.lit("["), F.col("_slow_text"), F.lit(',"'), digest, F.lit('"]'))))
    return wrapped.withColumn("v", F.when(F.try_variant_get("_wrapped", "$[1]", "string") == digest,
                                          F.col("_wrapped")))


# The fields whose JSON value is a number; all others are strings.
_NUMBER_FIELDS = {"price"}
_STRING = r'"[^"\\\x00-\x1f]+"'  # non-empty, no escape, no control character
_PATTERNS = {
    "orderId": '"' + _UUID_TEXT + '"', "eventId": '"' + _UUID_TEXT + '"', "userId": _STRING, "productId": _STRING,
    "price": r"(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?",
    "currency": '"(?:' + "|".join(CURRENCIES) + ')"', "eventType": '"(?:' + "|".join(USER_EVENT_TYPES) + ')"',
    "timestamp": '"' + _TIMESTAMP_TEXT + '"',
}


def _fast_pattern(topic: str) -> str:
    """The plain shape: the required fields in contract order, compact or with one space after
    ``:`` and ``,``, nothing else, values already in range."""
    members = [f'"{name}": ?{_PATTERNS[name]}' for name in REQUIRED_FIELDS[topic]]
    return r"\A\{" + ", ?".join(members) + r"\}\z"


def _fast_fields(parts: Column, topic: str) -> dict[str, Column]:
    """Each field's text, from a plain record's pieces between quotes (``split(text, '"')``)."""
    index, out = 1, {}
    for name in REQUIRED_FIELDS[topic]:
        if name in _NUMBER_FIELDS:  # parts[index + 1] is ':<number>,' (or ':<number>}' at the end)
            out[name] = F.trim(F.translate(F.get(parts, index + 1), ":,}", ""))
            index += 2
        else:
            out[name] = F.get(parts, index + 2)
            index += 4
    return out


def _with_fast_path(frame: DataFrame, topic: str) -> DataFrame:
    """Adds ``_fast`` (the record is of the plain shape and valid: no rule needs the JSON parser),
    ``_f_<field>`` (its fields' text, NULL otherwise), ``_f_event_time`` and ``_slow_text`` (the
    text, NULL when fast).

    Nearly every record a well-behaved producer sends takes this path: one regular expression and
    a split instead of the variant parse and a dozen rules. Anything else, valid or not, goes
    through the full parse, so the verdict and the values are the same either way (a test
    compares the two paths on hostile input). The split and the timestamp are columns of their
    own, computed once: Spark does not share a subexpression inside CASE branches.
    """
    frame = frame.select("*", F.when(F.col("_text").rlike(_fast_pattern(topic)),
                                     F.split(F.col("_text"), '"')).alias("_parts"))
    cut = _fast_fields(F.col("_parts"), topic)
    frame = frame.select("*", *[c.alias(f"_f_{n}") for n, c in cut.items()])
    frame = frame.select("*", F.try_to_timestamp(F.col("_f_timestamp"), F.lit(TIMESTAMP_FORMAT))
                         .alias("_f_event_time"))
    event_time = F.col("_f_event_time")
    fast = event_time.isNotNull() & (event_time <= F.current_timestamp() + F.lit(MAX_CLOCK_SKEW)) \
        & (event_time >= F.lit(MIN_EVENT_TIME.isoformat()).cast("timestamp"))
    if topic == ORDERS:
        fast = fast & (F.col("_f_price").cast(PRICE_DECIMAL) > 0)
    frame = frame.withColumn("_fast", F.coalesce(fast, F.lit(False)))
    return frame.withColumn("_slow_text", F.when(~F.col("_fast"), F.col("_text")))


def _extract(frame: DataFrame, topic: str) -> DataFrame:
    """Each field's variant, type name, text and typed value, computed once each.

    Two projections rather than one expression per rule: Spark does not share common
    subexpressions across CASE branches, and it keeps these projections apart because their
    expressions are used many times (not "cheap"). Parsing got about 3x faster this way.
    """
    fields = REQUIRED_FIELDS[topic]
    frame = frame.select("*", *[F.variant_get("v", f"$[0].{f}", "variant").alias(f"_v_{f}") for f in fields])
    price = [F.coalesce(F.col("_f_price").cast(PRICE_DECIMAL),
                        F.try_variant_get(_v("price"), "$", PRICE_DECIMAL)).alias("_price"),
             F.try_variant_get(_v("price"), "$", "double").alias("_number")] if topic == ORDERS else []
    frame = frame.select(
        "*", *[F.schema_of_variant(_v(f)).alias(f"_t_{f}") for f in fields],
        *[F.coalesce(F.col(f"_f_{f}"), F.try_variant_get(_v(f), "$", "string")).alias(f"_s_{f}")
          for f in fields if f != "price"], *price)
    if topic != ORDERS:
        return frame
    return frame.select("*", F.when(F.startswith(_t("price"), F.lit("DOUBLE")), _price_text(F.col("_slow_text")))
                        .alias("_price_text"))


# A JSON string (escapes of a quote or a backslash already rewritten, so no quote inside) or a
# JSON number, outside strings. Only repetitions of one character class: Java runs those without
# recursion, so a 1 MB string cannot overflow the stack.
_STRING_OR_NUMBER = r'("[^"]*")|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'


def _price_text(text: Column) -> Column:
    """The top-level ``price`` number exactly as written in ``text`` (a valid JSON object).

    The variant keeps a number of more than 38 digits or in exponent notation only as a DOUBLE,
    which cannot tell ``100.00000000000000000000000000000000000001`` from ``100``. So the record is
    rewritten with every number as a string and parsed again, and the price's text read from it:
    ``\\\\`` and ``\\"`` become the equivalent ``\\u005c`` and ``\\u0022`` (a string is then
    ``"[^"]*"``), every string is marked by \\x01\\x01 after it and every number by \\x01 on
    both sides (a valid record holds no raw control character), the pairs are dropped and the
    remaining marks become quotes. Costly, so only for prices the variant holds as DOUBLE.
    """
    text = F.regexp_replace(text, r"\\\\", r"\\u005c")
    text = F.regexp_replace(text, r'\\"', r"\\u0022")
    text = F.regexp_replace(text, _STRING_OR_NUMBER, "$1\x01$2\x01")
    text = F.translate(F.regexp_replace(text, "\x01\x01", ""), "\x01", '"')
    return F.try_variant_get(F.try_parse_json(text), "$.price", "string")


def _price_rules() -> list[tuple[Column, Column | str]]:
    """Over a JSON number; ``_price`` is it rounded to numeric(12,2), NULL when that does not fit.

    "At most 2 decimals" is about the number's value: ``149.990`` is 149.99 exactly, and accepted.
    A JSON number is a BIGINT, a DECIMAL whose scale is its count of decimals (the variant drops
    trailing zeros), or, in exponent notation or beyond 38 digits, a DOUBLE: then the rules read
    the number's own text (``_price_text``): digits after the point, less the exponent, less the
    trailing zeros of all its digits, is its count of decimals.
    """
    price, number, kind, exact = F.col("_price"), F.col("_number"), _t("price"), F.col("_price_text")
    text = F.coalesce(exact, F.try_variant_get(_v("price"), "$", "string"))
    double = F.startswith(kind, F.lit("DOUBLE"))
    mantissa = F.regexp_extract(exact, "^[^eE]*", 0)
    exponent_text = F.regexp_extract(exact, "[eE][+]?(-?[0-9]+)$", 1)
    exponent = F.when(exponent_text == "", F.lit(0)).otherwise(exponent_text.try_cast("int"))
    digits = F.translate(mantissa, "-.", "")
    decimals = (F.length(F.regexp_extract(mantissa, "[.]([0-9]*)", 1))
                - (F.length(digits) - F.length(F.rtrim(digits, F.lit("0")))) - exponent)
    not_positive = F.when(double, F.startswith(exact, F.lit("-")) | ~F.rlike(mantissa, F.lit("[1-9]"))) \
        .otherwise(number <= 0)
    more_decimals = F.when(double, F.coalesce(decimals > 2, F.lit(True))).otherwise(
        F.startswith(kind, F.lit("DECIMAL")) & ~F.substring_index(kind, ",", -1).isin("0)", "1)", "2)"))
    return [
        (F.coalesce(not_positive, F.lit(False)), F.concat(F.lit("invalid value: price must be > 0: "), text)),
        (price.isNull(), F.concat(F.lit(f"invalid value: price does not fit {PRICE_TYPE}: "), text)),
        (more_decimals, F.concat(F.lit("invalid value: price has more than 2 decimals: "), text)),
    ]


def _reason(topic: str) -> Column:
    """The first broken rule, as text; NULL when the record is valid (over :func:`_extract`'s columns)."""
    fields = REQUIRED_FIELDS[topic]
    v = F.col("v")
    rules: list[tuple[Column, Column | str]] = [
        (v.isNull() & F.try_parse_json(F.col("_text")).isNull(), "invalid JSON"),
        (v.isNull(), "invalid JSON: text after the JSON value"),
        # schema_of_variant builds the whole record's schema: only asked when a field is missing.
        (_v(fields[0]).isNull() & ~F.startswith(F.schema_of_variant(F.variant_get(v, "$[0]", "variant")),
                                                F.lit("OBJECT")), "not a JSON object"),
    ]
    for name in fields:
        rules.append((_v(name).isNull() | F.is_variant_null(_v(name)), f"missing field: {name}"))
    for name in fields:
        if name == "price":
            kind = _t(name)
            is_number = (F.startswith(kind, F.lit("BIGINT")) | F.startswith(kind, F.lit("DOUBLE"))
                         | F.startswith(kind, F.lit("DECIMAL")))
            rules.append((~is_number, "wrong type: price must be a JSON number"))
        else:
            rules.append((_t(name) != F.lit("STRING"), f"wrong type: {name} must be a string"))
    for name in fields:
        if name != "price":  # PostgreSQL text cannot hold NUL
            rules.append((F.contains(_s(name), F.lit("\u0000")), f"invalid value: {name} contains NUL"))
    id_field = "orderId" if topic == ORDERS else "eventId"
    rules.append((~_s(id_field).rlike(_UUID),
                  F.concat(F.lit(f"invalid value: {id_field} is not a UUID: "), _s(id_field))))
    rules.append((F.length(_s("userId")) == 0, "invalid value: userId is empty"))
    if topic == USER_EVENTS:
        rules.append((~_s("eventType").isin(*USER_EVENT_TYPES),
                      F.concat(F.lit(f"invalid value: eventType must be one of {', '.join(USER_EVENT_TYPES)}: "),
                               _s("eventType"))))
    if topic in (PRODUCT_VIEW, ORDERS):
        rules.append((F.length(_s("productId")) == 0, "invalid value: productId is empty"))
    if topic == ORDERS:
        rules += _price_rules()
        rules.append((~_s("currency").isin(*CURRENCIES),
                      F.concat(F.lit(f"invalid value: currency must be one of {', '.join(CURRENCIES)}: "),
                               _s("currency"))))
    event_time, skew_min = F.col("event_time"), int(MAX_CLOCK_SKEW.total_seconds() // 60)
    rules += [
        (~_s("timestamp").rlike("^" + _TIMESTAMP_TEXT + r"\z"),
         F.concat(F.lit("invalid value: timestamp is not ISO-8601 UTC with milliseconds (yyyy-MM-ddTHH:mm:ss.SSSZ): "),
                  _s("timestamp"))),
        (event_time.isNull(), F.concat(F.lit("invalid value: timestamp is no such date and time: "), _s("timestamp"))),
        # In a streaming query current_timestamp() is the micro-batch's time, kept in the
        # checkpoint: a replayed batch judges its records exactly as the first run did.
        (event_time > F.current_timestamp() + F.lit(MAX_CLOCK_SKEW),
         F.concat(F.lit(f"invalid value: timestamp is more than {skew_min} min ahead of the processing clock: "),
                  _s("timestamp"))),
        # Spark takes a Python datetime through the Julian calendar: year 1 would move 2 days.
        (event_time < F.lit(MIN_EVENT_TIME.isoformat()).cast("timestamp"),
         F.concat(F.lit("invalid value: timestamp is before year 1: "), _s("timestamp"))),
    ]
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


def parse(records: DataFrame, topic: str, fast_path: bool = True) -> DataFrame:
    """Kafka records of one topic -> typed event columns plus ``reject_reason`` (NULL = valid).

    Output: the event's fields in snake_case (``order_id``, ``user_id``, ``price`` decimal(12,2),
    ``event_time`` timestamp, ...), ``topic``, ``partition``, ``offset``, ``kafka_timestamp``,
    ``record_key`` and ``payload`` (bounded; both NULL on a valid row: nothing keeps them),
    ``payload_bytes`` and ``reject_reason``. ``fast_path=False`` sends every record through the
    full parse (for tests comparing the two).
    """
    text = F.when(F.is_valid_utf8(F.col("value")), F.col("value").cast("string"))
    base = records.select(
        F.col("topic"), F.col("partition"), F.col("offset"), F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").alias("_key"), F.col("value").alias("_value"),
        F.coalesce(F.octet_length(F.col("value")), F.lit(0)).alias("payload_bytes"),
        text.alias("_text"),
    )
    if fast_path:
        base = _with_fast_path(base, topic)
    else:
        base = base.select("*", F.lit(False).alias("_fast"), F.col("_text").alias("_slow_text"),
                           F.lit(None).cast("timestamp").alias("_f_event_time"),
                           *[F.lit(None).cast("string").alias(f"_f_{n}") for n in REQUIRED_FIELDS[topic]])
    base = _one_json_value(base.withColumn("_digest", F.sha2(F.col("_slow_text").cast("binary"), 256)))
    fields = _extract(base, topic).withColumn(
        "event_time", F.when(F.col("_fast"), F.col("_f_event_time"))
                       .otherwise(F.when(_s("timestamp").rlike("^" + _TIMESTAMP_TEXT + r"\z"),
                                         F.try_to_timestamp(_s("timestamp"), F.lit(TIMESTAMP_FORMAT)))))
    reason = (F.when(F.col("payload_bytes") == 0, F.lit("empty record"))
              .when(F.col("_text").isNull(), F.lit("not UTF-8 text"))
              .when(F.col("_fast"), F.lit(None).cast("string"))
              .otherwise(_reason(topic)))
    id_column = "order_id" if topic == ORDERS else "event_id"
    columns = [F.lower(_s("orderId" if topic == ORDERS else "eventId")).alias(id_column), _s("userId").alias("user_id")]
    if topic == USER_EVENTS:
        columns.append(_s("eventType").alias("event_type"))
    else:
        columns.append(_s("productId").alias("product_id"))
    if topic == ORDERS:
        columns += [F.col("_price").alias("price"), _s("currency").alias("currency")]
    out = fields.select(*columns, "event_time", "topic", "partition", "offset", "kafka_timestamp", "_key", "_value",
                        "payload_bytes", reason.alias("reject_reason"))
    rejected_row = F.col("reject_reason").isNotNull()
    payload = F.coalesce(F.substring(_printable(F.col("_value")), 1, MAX_PAYLOAD_CHARS), F.lit(""))
    return out.select(*[c for c in out.columns if c not in ("_key", "_value", "payload_bytes", "reject_reason")],
                      F.when(rejected_row, _printable(F.col("_key"))).alias("record_key"),
                      F.when(rejected_row, payload).alias("payload"), "payload_bytes", "reject_reason")


def valid(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNull()).drop("reject_reason", "payload", "payload_bytes",
                                                              "record_key")


REJECT_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp", "record_key", "payload", "payload_bytes",
                  "reject_reason")


def rejected(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNotNull()).select(*REJECT_COLUMNS)
