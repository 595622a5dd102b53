"""Snowflake SQL through fakesnow, against what Snowflake's documentation says it returns.

A Snowflake team's dbt models run on fakesnow (a Snowflake emulator on DuckDB) under this
plugin. The matrix below runs the constructs such models commonly use and compares each
answer with the value Snowflake's documentation gives, Python type included (as the
connector returns it: NUMBER with scale 0 as int, other NUMBERs as Decimal, FLOAT as float).
Where fakesnow's answer differs, the case is in KNOWN_DIFFERENCES instead, which pins
fakesnow's current answer (or error) so that an upgrade that fixes it is noticed; each
difference is described for users in docs/snowflake-differences.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("fakesnow")

import fakesnow
import snowflake.connector
from snowflake.connector.errors import ProgrammingError

# DuckDB warns on every query fakesnow runs (fakesnow asks a DB-API result for Arrow).
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning:fakesnow.cursor")

Rows = list[tuple[Any, ...]]

_SETUP = [
    """create or replace table orders (
        id int, customer varchar, status varchar, amount number(38,2),
        ordered_at timestamp_ntz, order_date date, date_text varchar, payload variant
    )""",
    """insert into orders select 1, 'alice', 'shipped', 10.10, '2024-03-15 13:45:30', '2024-01-31', '15/03/2024',
        parse_json('{"customer": {"name": "Alice", "tier": "gold"},
                     "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}')""",
    """insert into orders select 2, 'bob', 'placed', 20.20, '2024-03-16 08:00:00', '2024-02-10', '16/03/2024',
        parse_json('{"customer": {"name": "Bob"}, "items": [{"sku": "c", "qty": 5}]}')""",
    """insert into orders select 3, 'alice', 'shipped', 5.05, '2024-03-17 23:59:59', '2024-03-17', '17/03/2024',
        parse_json('{"customer": {"name": "Alice"}, "items": []}')""",
    "create or replace table events (at_tz timestamp_tz)",
    "insert into events select to_timestamp_tz('2024-01-01 01:00:00 +02:00')",
    "create or replace table tz_inserts (at_tz timestamp_tz)",
    'create or replace table "MixedCase" (id int)',
    "create or replace table merge_target (id int, name varchar)",
    "insert into merge_target values (1, 'x')",
]


@pytest.fixture(scope="module")
def cursor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One fakesnow connection for the module, on a database file in a temporary folder."""
    with fakesnow.patch(db_path=tmp_path_factory.mktemp("fakesnow")):
        conn = snowflake.connector.connect(database="ANALYTICS", schema="PUBLIC")
        cur = conn.cursor()
        for statement in _SETUP:
            cur.execute(statement)
        yield cur
        conn.close()


def _cell(value: Any) -> tuple[str, Any]:
    """A value with its type; Decimals keep their scale, datetimes their offset."""
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, dt.date):  # datetime too
        return (type(value).__name__, value.isoformat())
    return (type(value).__name__, value)


def _typed(rows: Rows) -> list[tuple[tuple[str, Any], ...]]:
    return [tuple(_cell(value) for value in row) for row in rows]


def _run(cursor: Any, sql: str) -> Rows:
    """The rows, after reading the result's description as dbt's adapter does for every query."""
    rows: Rows = cursor.execute(sql).fetchall()
    assert cursor.description is not None
    return rows


def _utc_offset(hours: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


MATRIX = [
    # docs.snowflake.com/en/sql-reference/functions/initcap (default delimiters include '-' and '_')
    pytest.param(
        "select initcap('hello world-foo bar_baz') as a, initcap('HELLO wORLD') as b",
        [("Hello World-Foo Bar_Baz", "Hello World")],
        id="initcap",
    ),
    # docs.snowflake.com/en/sql-reference/functions/iff
    pytest.param("select iff(1 > 0, 'yes', 'no') as a, iff(null, 'yes', 'no') as b", [("yes", "no")], id="iff"),
    # docs.snowflake.com/en/sql-reference/functions/nvl
    pytest.param("select nvl(null, 'x') as a, nvl('a', 'x') as b", [("x", "a")], id="nvl"),
    # docs.snowflake.com/en/sql-reference/functions/nvl2
    pytest.param("select nvl2(null, 'a', 'b') as a, nvl2(1, 'a', 'b') as b", [("b", "a")], id="nvl2"),
    # docs.snowflake.com/en/sql-reference/functions/coalesce
    pytest.param("select coalesce(null, null, 3) as a", [(3,)], id="coalesce"),
    # docs.snowflake.com/en/sql-reference/functions/zeroifnull
    pytest.param("select zeroifnull(null) as a, zeroifnull(5) as b", [(0, 5)], id="zeroifnull"),
    # docs.snowflake.com/en/sql-reference/functions/nullifzero
    pytest.param("select nullifzero(0) as a, nullifzero(5) as b", [(None, 5)], id="nullifzero"),
    # docs.snowflake.com/en/sql-reference/functions/div0 (uncast, its scale differs: see KNOWN_DIFFERENCES)
    pytest.param(
        "select div0(1, 0)::number(38,2) as a, div0(10, 4)::number(38,2) as b",
        [(Decimal("0.00"), Decimal("2.50"))],
        id="div0",
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_char
    pytest.param("select to_varchar(123.45::number(10,2)) as a", [("123.45",)], id="to_varchar-number"),
    # docs.snowflake.com/en/sql-reference/functions/to_char (date and time format elements)
    pytest.param(
        "select to_varchar('2024-03-15'::date, 'MON DD, YYYY') as a,"
        " to_char('2024-03-15 13:45:30'::timestamp_ntz, 'YYYY-MM-DD HH24:MI:SS') as b",
        [("Mar 15, 2024", "2024-03-15 13:45:30")],
        id="to_varchar-date-literal-format",
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_char (a column cast inside the call: the documented rewrite)
    pytest.param(
        "select to_varchar(ordered_at::timestamp_ntz, 'YYYY-MM-DD') as a,"
        " to_varchar(order_date::date, 'DD/MM/YYYY') as b from orders where id = 1",
        [("2024-03-15", "31/01/2024")],
        id="to_varchar-cast-column-format",
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_date
    pytest.param(
        "select to_date(date_text, 'DD/MM/YYYY') as a from orders order by id",
        [(dt.date(2024, 3, 15),), (dt.date(2024, 3, 16),), (dt.date(2024, 3, 17),)],
        id="to_date-format",
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_decimal
    pytest.param("select to_number('12.3456', 10, 1) as a", [(Decimal("12.3"),)], id="to_number-scale"),
    # docs.snowflake.com/en/sql-reference/functions/try_cast
    pytest.param(
        "select try_cast('abc' as integer) as a, try_cast('12' as integer) as b, try_cast('2024-13-01' as date) as c",
        [(None, 12, None)],
        id="try_cast",
    ),
    # docs.snowflake.com/en/sql-reference/functions/try_to_decimal
    pytest.param(
        "select try_to_number('abc', 10, 1) as a, try_to_number('42.5', 10, 1) as b",
        [(None, Decimal("42.5"))],
        id="try_to_number",
    ),
    # docs.snowflake.com/en/sql-reference/functions/dateadd (month end is kept: Jan 31 + 1 month = Feb 29)
    pytest.param(
        "select dateadd(day, 5, '2024-01-30'::date) as a, dateadd(month, 1, '2024-01-31'::date) as b,"
        " dateadd(hour, 3, ordered_at) as c from orders where id = 1",
        [(dt.date(2024, 2, 4), dt.date(2024, 2, 29), dt.datetime(2024, 3, 15, 16, 45, 30))],
        id="dateadd",
    ),
    # docs.snowflake.com/en/sql-reference/functions/datediff (counts boundaries crossed)
    pytest.param(
        "select datediff(day, '2024-01-01'::date, '2024-03-01'::date) as a,"
        " datediff(month, '2024-01-31'::date, '2024-02-01'::date) as b,"
        " datediff(year, '2023-12-31'::date, '2024-01-01'::date) as c,"
        " datediff(hour, '2024-01-01 23:59:00'::timestamp_ntz, '2024-01-02 00:01:00'::timestamp_ntz) as d,"
        " datediff(day, order_date, ordered_at::date) as e from orders where id = 1",
        [(60, 1, 1, 1, 44)],
        id="datediff",
    ),
    # docs.snowflake.com/en/sql-reference/functions/date_trunc (WEEK_START 0: weeks start on Monday)
    pytest.param(
        "select date_trunc('month', ordered_at) as a, date_trunc('week', ordered_at) as b,"
        " date_trunc('hour', ordered_at) as c from orders where id = 1",
        [(dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 11), dt.datetime(2024, 3, 15, 13))],
        id="date_trunc-timestamp",
    ),
    # docs.snowflake.com/en/sql-reference/functions/last_day
    pytest.param(
        "select last_day(order_date) as a, last_day(order_date, 'year') as b from orders where id = 2",
        [(dt.date(2024, 2, 29), dt.date(2024, 12, 31))],
        id="last_day",
    ),
    # docs.snowflake.com/en/sql-reference/functions/convert_timezone (3 arguments: TIMESTAMP_NTZ; PDT is UTC-7)
    pytest.param(
        "select convert_timezone('UTC', 'America/Los_Angeles', ordered_at) as a from orders where id = 1",
        [(dt.datetime(2024, 3, 15, 6, 45, 30),)],
        id="convert_timezone-3-args",
    ),
    # docs.snowflake.com/en/user-guide/querying-semistructured (':' path, '.' and '[]' steps, '::' casts)
    pytest.param(
        """select parse_json('{"a": {"b": 1, "c": "x"}}'):a.c::string as a, parse_json('{"a": {"b": 1}}'):a.b::int as b,
        parse_json('{"a": [10, 20]}'):a[1]::int as c, parse_json('{"Name": "x"}'):name::string as d""",
        [("x", 1, 20, None)],
        id="parse_json-path",
    ),
    # docs.snowflake.com/en/user-guide/querying-semistructured (a missing key is NULL)
    pytest.param(
        "select payload:customer.name::string as name, payload:customer.tier::string as tier,"
        " payload:items[0].sku::string as first_sku from orders order by id",
        [("Alice", "gold", "a"), ("Bob", None, "c"), ("Alice", None, None)],
        id="variant-column-path",
    ),
    # docs.snowflake.com/en/sql-reference/functions/flatten
    pytest.param(
        "select o.id, f.value:sku::string as sku, f.value:qty::int as qty"
        " from orders o, lateral flatten(input => o.payload:items) f order by o.id, sku",
        [(1, "a", 2), (1, "b", 1), (2, "c", 5)],
        id="lateral-flatten",
    ),
    # docs.snowflake.com/en/sql-reference/functions/flatten (INDEX and VALUE columns)
    pytest.param(
        "select f.index, f.value::int as v from table(flatten(input => parse_json('[5, 6, 7]'))) f order by f.index",
        [(0, 5), (1, 6), (2, 7)],
        id="table-flatten",
    ),
    # docs.snowflake.com/en/sql-reference/functions/array_agg, .../array_size, .../to_json
    pytest.param(
        "select array_size(array_agg(customer)) as a, array_size(array_agg(distinct customer)) as b,"
        " (array_agg(customer) within group (order by id))[1]::string as c,"
        " to_json(array_agg(id) within group (order by id)) as d from orders",
        [(3, 2, "bob", "[1,2,3]")],
        id="array_agg-array_size",
    ),
    # docs.snowflake.com/en/sql-reference/functions/object_construct (NULL values are left out)
    pytest.param(
        "select object_construct('a', 1, 'b', 'x'):b::string as a, to_json(object_construct('a', 1, 'b', null)) as b",
        [("x", '{"a":1}')],
        id="object_construct",
    ),
    # docs.snowflake.com/en/sql-reference/functions/listagg
    pytest.param(
        "select listagg(distinct customer, ', ') within group (order by customer) as a,"
        " listagg(customer, '|') within group (order by id) as b from orders",
        [("alice, bob", "alice|bob|alice")],
        id="listagg",
    ),
    # docs.snowflake.com/en/sql-reference/functions/split_part (part 0 is 1, negative counts from the end)
    pytest.param(
        "select split_part('a,b,c', ',', 2) as a, split_part('a,b,c', ',', -1) as b,"
        " split_part('a,b,c', ',', 0) as c, split_part('a,b,c', ',', 5) as d",
        [("b", "c", "a", "")],
        id="split_part",
    ),
    # docs.snowflake.com/en/sql-reference/functions/regexp_substr
    pytest.param(
        "select regexp_substr('abc123def456', '[0-9]+') as a, regexp_substr('abc123def456', '[0-9]+', 1, 2) as b,"
        " regexp_substr('abc', '[0-9]+') as c, regexp_substr('key=val', '(\\\\w+)=(\\\\w+)', 1, 1, 'e', 2) as d",
        [("123", "456", None, "val")],
        id="regexp_substr",
    ),
    # docs.snowflake.com/en/sql-reference/functions/sha2 (default 256 bits, hex)
    pytest.param(
        "select sha2('abc') as a, sha2('abc', 256) as b",
        [(hashlib.sha256(b"abc").hexdigest(), hashlib.sha256(b"abc").hexdigest())],
        id="sha2",
    ),
    # docs.snowflake.com/en/sql-reference/functions/md5
    pytest.param("select md5('abc') as a", [(hashlib.md5(b"abc").hexdigest(),)], id="md5"),
    # docs.snowflake.com/en/sql-reference/constructs/qualify
    pytest.param(
        "select customer, id from orders"
        " qualify row_number() over (partition by customer order by ordered_at desc) = 1 order by customer",
        [("alice", 3), ("bob", 2)],
        id="qualify-row_number",
    ),
    # docs.snowflake.com/en/sql-reference/constructs/group-by (GROUP BY ALL)
    pytest.param(
        "select customer, count(*) as n from orders group by all order by customer",
        [("alice", 2), ("bob", 1)],
        id="group-by-all",
    ),
    # docs.snowflake.com/en/sql-reference/functions/ilike
    pytest.param(
        "select 'Hello' ilike 'hel%' as a, 'Hello' like 'hel%' as b, 'Hello' not ilike 'x%' as c",
        [(True, False, True)],
        id="ilike",
    ),
    # docs.snowflake.com/en/sql-reference/functions/iff (inside COUNT and MAX; SUM is in KNOWN_DIFFERENCES)
    pytest.param(
        "select count(iff(status = 'shipped', 1, null)) as a, max(iff(status = 'shipped', amount, null)) as b"
        " from orders",
        [(2, Decimal("10.10"))],
        id="iff-in-aggregates",
    ),
    # docs.snowflake.com/en/sql-reference/sql/select (SELECT * EXCLUDE)
    pytest.param(
        "select * exclude (payload, date_text) from orders where id = 1",
        [(1, "alice", "shipped", Decimal("10.10"), dt.datetime(2024, 3, 15, 13, 45, 30), dt.date(2024, 1, 31))],
        id="select-exclude",
    ),
    # docs.snowflake.com/en/sql-reference/functions/equal_null
    pytest.param(
        "select equal_null(null, null) as a, equal_null(1, null) as b, equal_null(1, 1) as c, null = null as d",
        [(True, False, True, None)],
        id="equal_null",
    ),
    # docs.snowflake.com/en/sql-reference/functions/decode (NULL matches NULL)
    pytest.param(
        "select decode(2, 1, 'one', 2, 'two', 'other') as a, decode(null, null, 'null', 'no') as b,"
        " decode(9, 1, 'one') as c",
        [("two", "null", None)],
        id="decode",
    ),
    # docs.snowflake.com/en/sql-reference/data-types-logical ('on' and 'off' casts: see KNOWN_DIFFERENCES)
    pytest.param(
        "select to_boolean('yes') as a, to_boolean('off') as b, to_boolean(0) as c, 'true'::boolean as d,"
        " 'n'::boolean as e, '1'::boolean as f, 5::boolean as g",
        [(True, False, False, True, False, True, True)],
        id="boolean-casts",
    ),
    # docs.snowflake.com/en/sql-reference/functions/boolor (and booland, boolxor, boolnot)
    pytest.param(
        "select boolor(1, 0) as a, booland(1, 0) as b, boolxor(2, 0) as c, boolnot(0) as d",
        [(True, False, True, True)],
        id="boolor-booland",
    ),
    # docs.snowflake.com/en/sql-reference/functions/boolor_agg, .../booland_agg
    pytest.param(
        "select boolor_agg(id > 2) as a, booland_agg(id > 2) as b from orders", [(True, False)], id="boolor_agg"
    ),
    # docs.snowflake.com/en/sql-reference/data-types-numeric (casts round half away from zero)
    pytest.param(
        "select 10.005::number(38,2) as a, (-0.125)::number(38,2) as b, 2.5::number(38,0) as c, round(2.345, 2) as d",
        [(Decimal("10.01"), Decimal("-0.13"), 3, Decimal("2.35"))],
        id="number-38-2-rounding",
    ),
    # docs.snowflake.com/en/sql-reference/operators-arithmetic (scale of * and +)
    pytest.param(
        "select 1.1::number(38,2) * 1.1::number(38,2) as a, 2.345::number(38,3) + 1.1::number(38,1) as b,"
        " amount * 3 as c, cast(amount as varchar) as d from orders where id = 1",
        [(Decimal("1.2100"), Decimal("3.445"), Decimal("30.30"), "10.10")],
        id="number-38-2-arithmetic",
    ),
    # docs.snowflake.com/en/sql-reference/functions/sum (the rewrite for the SUM difference)
    pytest.param("select sum(amount::number(38,2)) as a from orders", [(Decimal("35.35"),)], id="sum-of-cast-number"),
]


@pytest.mark.parametrize(("sql", "expected"), MATRIX)
def test_matrix(cursor: Any, sql: str, expected: Rows) -> None:
    assert _typed(_run(cursor, sql)) == _typed(expected)


@dataclass(frozen=True)
class Raises:
    """An error: its type and a stable part of its message."""

    error: type[BaseException]
    text: str


@dataclass(frozen=True)
class Difference:
    sql: str
    snowflake: Rows | Raises  # Snowflake's documented answer
    fakesnow: Rows | Raises  # fakesnow's current answer


def _outcome(cursor: Any, sql: str) -> list[tuple[tuple[str, Any], ...]] | BaseException:
    try:
        return _typed(_run(cursor, sql))
    except (ProgrammingError, NotImplementedError) as error:
        return error


def _matches(outcome: list[tuple[tuple[str, Any], ...]] | BaseException, answer: Rows | Raises) -> bool:
    if isinstance(answer, Raises):
        return isinstance(outcome, answer.error) and answer.text in str(outcome)
    return not isinstance(outcome, BaseException) and outcome == _typed(answer)


_SHA512_ABC = hashlib.sha512(b"abc").hexdigest()

KNOWN_DIFFERENCES = {
    # docs.snowflake.com/en/sql-reference/functions/to_char: the format is ignored for a timestamp column
    "to_varchar-timestamp-column-format": Difference(
        "select to_varchar(ordered_at, 'YYYY-MM-DD') as a from orders where id = 1",
        snowflake=[("2024-03-15",)],
        fakesnow=[("2024-03-15 13:45:30",)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_char: the format is ignored for a date column
    "to_varchar-date-column-format": Difference(
        "select to_varchar(order_date, 'DD/MM/YYYY') as a from orders where id = 1",
        snowflake=[("31/01/2024",)],
        fakesnow=[("2024-01-31",)],
    ),
    # docs.snowflake.com/en/sql-reference/sql-format-models: numeric formats are ignored
    "to_varchar-number-format": Difference(
        "select trim(to_varchar(1234.5, '9,999.00')) as a",
        snowflake=[("1,234.50",)],
        fakesnow=[("1234.5",)],
    ),
    # docs.snowflake.com/en/sql-reference/parameters (TIMESTAMP_NTZ_OUTPUT_FORMAT: YYYY-MM-DD HH24:MI:SS.FF3)
    "timestamp-cast-to-varchar": Difference(
        "select cast(ordered_at as varchar) as a from orders where id = 1",
        snowflake=[("2024-03-15 13:45:30.000",)],
        fakesnow=[("2024-03-15 13:45:30",)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_decimal: a format argument
    "to_number-format": Difference(
        "select to_number('1,234.50', '9,999.99', 10, 2) as a",
        snowflake=[(Decimal("1234.50"),)],
        fakesnow=Raises(ProgrammingError, "with format argument not implemented"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/to_decimal: default NUMBER(38,0) comes back as a Decimal
    "to_number-default-scale": Difference(
        "select to_number('12.34') as a", snowflake=[(12,)], fakesnow=[(Decimal(12),)]
    ),
    # docs.snowflake.com/en/sql-reference/functions/sum: SUM of a NUMBER column is a FLOAT
    "sum-number-column": Difference(
        "select sum(amount) as a from orders", snowflake=[(Decimal("35.35"),)], fakesnow=[(35.349999999999994,)]
    ),
    # docs.snowflake.com/en/sql-reference/functions/sum: SUM of an integer column is a FLOAT
    "sum-integer-column": Difference("select sum(id) as a from orders", snowflake=[(6,)], fakesnow=[(6.0,)]),
    # docs.snowflake.com/en/sql-reference/functions/iff: SUM(IFF(...)) is a FLOAT too
    "sum-of-iff": Difference(
        "select sum(iff(status = 'shipped', amount, 0)) as a from orders",
        snowflake=[(Decimal("15.15"),)],
        fakesnow=[(15.149999999999999,)],
    ),
    # docs.snowflake.com/en/sql-reference/operators-arithmetic: '/' gives NUMBER with scale max(s1, min(s1 + 6, 12))
    "division": Difference(
        "select 1 / 4 as a, amount / 2 as b from orders where id = 1",
        snowflake=[(Decimal("0.250000"), Decimal("5.05000000"))],
        fakesnow=[(0.25, 5.05)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/div0: same scale as '/'
    "div0-scale": Difference("select div0(10, 4) as a", snowflake=[(Decimal("2.500000"),)], fakesnow=[(2.5,)]),
    # docs.snowflake.com/en/sql-reference/functions/date_trunc: "the same type as the input value"
    "date_trunc-date-column": Difference(
        "select date_trunc('month', order_date) as a from orders where id = 1",
        snowflake=[(dt.date(2024, 1, 1),)],
        fakesnow=[(dt.datetime(2024, 1, 1),)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/dateadd: a DATE plus days is a DATE
    "dateadd-date-column": Difference(
        "select dateadd(day, 1, order_date) as a from orders where id = 1",
        snowflake=[(dt.date(2024, 2, 1),)],
        fakesnow=[(dt.datetime(2024, 2, 1),)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/convert_timezone: 2 arguments return a TIMESTAMP_TZ
    "convert_timezone-2-args": Difference(
        "select convert_timezone('America/New_York', '2024-01-15 12:00:00 +00:00'::timestamp_tz) as a",
        snowflake=[(dt.datetime(2024, 1, 15, 7, tzinfo=_utc_offset(-5)),)],
        fakesnow=[(dt.datetime(2024, 1, 15, 7),)],
    ),
    # docs.snowflake.com/en/sql-reference/data-types-datetime: TIMESTAMP_TZ keeps each value's offset
    "timestamp_tz-offset": Difference(
        "select hour(at_tz) as a, at_tz::date as b from events",
        snowflake=[(1, dt.date(2024, 1, 1))],
        fakesnow=[(23, dt.date(2023, 12, 31))],
    ),
    # docs.snowflake.com/en/sql-reference/data-types-datetime: a string with ' +02:00' into a TIMESTAMP_TZ column
    "timestamp_tz-insert-offset-string": Difference(
        "insert into tz_inserts values ('2024-01-01 10:00:00 +02:00')",
        snowflake=[(1,)],
        fakesnow=Raises(ProgrammingError, "Unknown TimeZone '+02:00'"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/listagg: the default delimiter is ''
    "listagg-default-delimiter": Difference(
        "select listagg(customer) within group (order by id) as a from orders",
        snowflake=[("alicebobalice",)],
        fakesnow=[("alice,bob,alice",)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/flatten: OUTER => TRUE gives one row for an empty array
    "flatten-outer": Difference(
        "select o.id, f.value:sku::string as sku"
        " from orders o, lateral flatten(input => o.payload:items, outer => true) f order by o.id, sku",
        snowflake=[(1, "a"), (1, "b"), (2, "c"), (3, None)],
        fakesnow=[(1, "a"), (1, "b"), (2, "c")],
    ),
    # docs.snowflake.com/en/sql-reference/functions/flatten (examples): VARIANT comes back as indented JSON
    "variant-text": Difference(
        "select parse_json('[1,2,3]') as a",
        snowflake=[("[\n  1,\n  2,\n  3\n]",)],
        fakesnow=[("[1,2,3]",)],
    ),
    # docs.snowflake.com/en/sql-reference/functions/array_construct: an ARRAY in a result (the rows come back
    # as a Python list; reading cursor.description raises)
    "array_construct-in-result": Difference(
        "select array_construct(1, 2, 3) as a",
        snowflake=[("[\n  1,\n  2,\n  3\n]",)],
        fakesnow=Raises(NotImplementedError, "for column type INTEGER[]"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/array_construct: elements of different types
    "array_construct-mixed-types": Difference(
        "select array_size(array_construct(1, 'a')) as a",
        snowflake=[(2,)],
        fakesnow=Raises(ProgrammingError, "Could not convert string 'a' to INT32"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/array_to_string: of an ARRAY_AGG
    "array_to_string-of-array_agg": Difference(
        "select array_to_string(array_agg(distinct customer) within group (order by customer), ',') as a from orders",
        snowflake=[("alice,bob",)],
        fakesnow=Raises(ProgrammingError, "Binder Error"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/get: GET(...)::string keeps the JSON quotes
    "get-to-string": Difference(
        "select get(array_agg(customer) within group (order by id), 1)::string as a from orders",
        snowflake=[("bob",)],
        fakesnow=[('"bob"',)],
    ),
    # docs.snowflake.com/en/sql-reference/data-types-logical: 'on' and 'off' in a cast
    "boolean-cast-on-off": Difference(
        "select 'off'::boolean as a, 'on'::boolean as b",
        snowflake=[(False, True)],
        fakesnow=Raises(ProgrammingError, "Could not convert string 'off' to BOOL"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/sha2: digest sizes other than 256
    "sha2-512": Difference(
        "select sha2('abc', 512) as a",
        snowflake=[(_SHA512_ABC,)],
        fakesnow=Raises(ProgrammingError, "Scalar Function with name sha2 does not exist"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/try_to_timestamp: NULL for a string that is no timestamp
    "try_to_timestamp-invalid-literal": Difference(
        "select try_to_timestamp('garbage') as a",
        snowflake=[(None,)],
        fakesnow=Raises(ProgrammingError, "invalid timestamp field format"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/try_to_timestamp: of a column
    "try_to_timestamp-column": Difference(
        "select try_to_timestamp(status) as a from orders where id = 1",
        snowflake=[(None,)],
        fakesnow=Raises(ProgrammingError, "Scalar Function with name try_to_timestamp does not exist"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/try_cast: a string that is no timestamp
    "try_cast-timestamp-invalid": Difference(
        "select try_cast(status as timestamp_ntz) as a from orders where id = 1",
        snowflake=[(None,)],
        fakesnow=Raises(ProgrammingError, "invalid timestamp field format"),
    ),
    # docs.snowflake.com/en/sql-reference/functions/ratio_to_report
    "ratio_to_report": Difference(
        "select round(ratio_to_report(column1) over (), 2) as a from values (1), (1)",
        snowflake=[(Decimal("0.50"),), (Decimal("0.50"),)],
        fakesnow=Raises(ProgrammingError, "ratio_to_report does not exist"),
    ),
    # docs.snowflake.com/en/sql-reference/data-types-numeric: NUMBER(38,0) holds 38 digits, fakesnow's only int64
    "number-38-0-beyond-int64": Difference(
        "select 100000000000000000000::number(38,0) as a",
        snowflake=[(100000000000000000000,)],
        fakesnow=Raises(ProgrammingError, "out of range for the destination type INT64"),
    ),
    # docs.snowflake.com/en/sql-reference/identifiers-syntax: unquoted names resolve in upper case only
    "unquoted-name-finds-quoted-table": Difference(
        "select count(*) as a from mixedcase",
        snowflake=Raises(ProgrammingError, "does not exist"),
        fakesnow=[(0,)],
    ),
    # docs.snowflake.com/en/sql-reference/sql/merge: unqualified names in INSERT VALUES are the source's
    # (dbt-snowflake's merge strategy writes them so)
    "merge-insert-unqualified-values": Difference(
        "merge into merge_target as t using (select 2 as id, 'y' as name) as s on s.id = t.id"
        " when not matched then insert (id, name) values (id, name)",
        snowflake=[(1,)],
        fakesnow=Raises(ProgrammingError, 'Ambiguous reference to column name "ID"'),
    ),
    # docs.snowflake.com/en/sql-reference/sql/create-table: a TEMPORARY table named database.schema.name
    # (dbt-snowflake names its incremental models' temporary relations so)
    "temporary-table-qualified-name": Difference(
        "create or replace temporary table analytics.public.tmp_table as (select 1 as id)",
        snowflake=[("Table TMP_TABLE successfully created.",)],
        fakesnow=Raises(ProgrammingError, 'TEMPORARY table names can *only* use the "temp" catalog'),
    ),
    # docs.snowflake.com/en/sql-reference/sql/create-view: a TEMPORARY view named database.schema.name
    "temporary-view-qualified-name": Difference(
        "create or replace temporary view analytics.public.tmp_view as (select 1 as id)",
        snowflake=[("View TMP_VIEW successfully created.",)],
        fakesnow=Raises(ProgrammingError, 'TEMPORARY table names can *only* use the "temp" catalog'),
    ),
    # docs.snowflake.com/en/sql-reference/sql/select: a result may have two columns of the same name
    "duplicate-column-names": Difference(
        "select 1 as a, 2 as a",
        snowflake=[(1, 2)],
        fakesnow=[(2,)],
    ),
}

_FIXED = (
    "fakesnow now gives Snowflake's answer: remove this difference from docs/snowflake-differences.md"
    " and move the case into the matrix"
)


@pytest.mark.parametrize("case", list(KNOWN_DIFFERENCES.values()), ids=list(KNOWN_DIFFERENCES))
def test_known_difference(cursor: Any, case: Difference) -> None:
    outcome = _outcome(cursor, case.sql)
    assert not _matches(outcome, case.snowflake), _FIXED
    assert _matches(outcome, case.fakesnow), (
        f"fakesnow's answer changed, but is not Snowflake's either: {outcome!r};"
        f" pinned: {case.fakesnow!r}; Snowflake: {case.snowflake!r}"
    )
