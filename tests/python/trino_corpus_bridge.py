"""A JSON-lines bridge that runs SQL through Osprey's Trino front door with the real `trino`
client, for the Rust sqllogictest corpus runner (tests/sql/*.slt).

    python trino_corpus_bridge.py --url http://127.0.0.1:PORT --user admin --password PW \
        [--catalog osprey] [--schema public] [--ca CA.pem]

It holds ONE `trino.dbapi` connection for its whole life, so what the door sends back in
`X-Trino-Set-*` / `X-Trino-Clear-Session` headers (`USE`, `SET`, `RESET`) carries over to the
next statement, as for any client connection. Authentication is Basic, as
tests/python/test_trino_client.py does it; over plain `http://` the client refuses a password
unless `allow_insecure_auth=True`, which is passed (the bridge only ever talks to loopback). The
HTTP session ignores proxies and CA bundles from the environment (`trust_env = False`).

Each stdin line `{"sql": "..."}` gets exactly one stdout line, `{"ok": true, "columns":
[{"name", "type"}], "rows": [["text", ...]], "update_count": N|null, "update_type": T|null}` or
`{"ok": false, "message", "error_name", "error_type"}`. `update_count` is set whenever the door
names an `updateType` (INSERT, CREATE TABLE, USE, ...): the protocol's `updateCount` when sent,
else the single `rows` value of a Trino-style write, else 0 (DDL); rows are still given. A
statement with neither columns nor an update type answers `columns: []`, a null count. A bad
statement (or line) never ends the bridge; EOF on stdin does.

Values: the corpus's expected results are arrow-rs's `ArrayFormatter` text (default
`FormatOptions`, null as `NULL`, a whole empty cell as `(empty)`), while the door sends JSON
values typed by Trino type names. The connection uses `legacy_primitive_types=True` so the rows
arrive as the door's JSON (no lossy Python types: nanosecond timestamps, decimal text), and
`render` turns each back into Arrow's display, by type:
  * decimal: the door's text is already Arrow's (`11.50`); varchar, date: as sent.
  * double / real: ryu's shortest round-trip form as Arrow prints f64 / f32 (`1.0`, `1e16`,
    `NaN`, `inf`); a real is shortened as an f32 (the door widens Float32 to f64).
  * timestamp: `2024-01-31 10:11:12.500000000` -> `2024-01-31T10:11:12.500` (chrono's Debug:
    the fraction in 0, 3, 6 or 9 digits as the value needs); time likewise.
  * timestamp with time zone: RFC 3339 as Arrow does (`...T10:11:12+01:00`, `Z` for UTC).
  * varbinary: the door's base64 -> lowercase hex. Intervals: Arrow's `1 years 2 mons` and
    `1 days 2 hours 3 mins 4.005 secs` (a day-time value is split on whole days).
  * array `[1, NULL]`, map `{a: 1}`, row `{x: 1, y: why}` (nested empty strings stay empty).
Types without a Trino name (MonthDayNano intervals, durations) arrive as `varchar` holding
Arrow's text already. Not recoverable: Float16 (Arrow prints `1`; it arrives as a real), Date64
(Arrow shows a datetime; it arrives as a date), a day-time interval's own day/millisecond split,
row field names with spaces (the door does not quote them).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import struct
import sys
import urllib.parse
from decimal import Decimal
from typing import Any

import requests
import trino.dbapi
import trino.exceptions
from trino.auth import BasicAuthentication

NUMERIC = {"boolean", "tinyint", "smallint", "integer", "bigint", "double", "real"}


def split_type(trino_type: str) -> tuple[str, list[str]]:
    """`map(varchar,array(bigint))` -> (`map`, [`varchar`, `array(bigint)`]);
    `timestamp(3) with time zone` -> (`timestamp with time zone`, [`3`])."""
    start = trino_type.find("(")
    if start < 0:
        return trino_type.strip(), []
    args: list[str] = []
    depth, begin = 0, start + 1
    for i in range(start, len(trino_type)):
        char = trino_type[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(trino_type[begin:i].strip())
                return (trino_type[:start] + trino_type[i + 1:]).strip(), args
        elif char == "," and depth == 1:
            args.append(trino_type[begin:i].strip())
            begin = i + 1
    return trino_type.strip(), args


def ryu(value: float, single: bool) -> str:
    """A float as ryu (Arrow's float display) writes an f64, or an f32 when `single`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    text = repr(value)
    if single:
        for digits in range(1, 10):
            text = f"{value:.{digits - 1}e}"
            if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
                break
    sign, figures, exponent = Decimal(text).normalize().as_tuple()
    mantissa, k = "".join(map(str, figures)), int(exponent)
    kk, top, low = len(mantissa) + k, 13 if single else 16, -6 if single else -5
    out = "-" if sign else ""
    if 0 <= k and kk <= top:
        return f"{out}{mantissa}{'0' * k}.0"
    if 0 < kk <= top:
        return f"{out}{mantissa[:kk]}.{mantissa[kk:]}"
    if low < kk <= 0:
        return f"{out}0.{'0' * -kk}{mantissa}"
    point = f".{mantissa[1:]}" if len(mantissa) > 1 else ""
    return f"{out}{mantissa[0]}{point}e{kk - 1}"


def fraction(clock: str) -> str:
    """`10:11:12.500000` -> `10:11:12.500`: chrono's Debug (0, 3, 6 or 9 digits)."""
    whole, _, digits = clock.partition(".")
    nanos = int((digits + "000000000")[:9])
    if nanos == 0:
        return whole
    if nanos % 1_000_000 == 0:
        return f"{whole}.{nanos // 1_000_000:03}"
    if nanos % 1_000 == 0:
        return f"{whole}.{nanos // 1_000:06}"
    return f"{whole}.{nanos:09}"


def day_time(text: str) -> str:
    """The door's `-1 02:03:04.005` (whole days split off) as Arrow's IntervalDayTime text."""
    sign = -1 if text.startswith("-") else 1
    days_text, clock = text.lstrip("-").split(" ")
    hours, minutes, seconds = clock.split(":")
    days = sign * int(days_text)
    millis = round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)
    neg, parts = "-" if sign < 0 and millis else "", [f"{days} days"] if days else []
    parts += [f"{neg}{millis // 3_600_000} hours"] if millis >= 3_600_000 else []
    parts += [f"{neg}{millis // 60_000 % 60} mins"] if millis // 60_000 % 60 else []
    if millis % 60_000:
        parts.append(f"{neg}{millis // 1000 % 60}.{millis % 1000:03} secs")
    return " ".join(parts) or "0 secs"


def render(value: Any, trino_type: str) -> str:
    """One JSON value of the door, as Arrow's ArrayFormatter displays the Arrow value."""
    if value is None:
        return "NULL"
    base, args = split_type(trino_type)
    if base == "boolean":
        return "true" if value else "false"
    if base in ("double", "real"):
        return ryu(float(value), base == "real")
    if base == "varbinary":
        return base64.b64decode(value).hex()
    if base == "timestamp":
        return fraction(value.replace(" ", "T"))
    if base == "time":
        return fraction(value)
    if base == "timestamp with time zone":
        moment, _, offset = value.rpartition(" ")
        return fraction(moment.replace(" ", "T")) + ("Z" if offset == "+00:00" else offset)
    if base == "interval year to month":
        years, _, months = value.lstrip("-").partition("-")
        total = (int(years) * 12 + int(months)) * (-1 if value.startswith("-") else 1)
        return f"{total // 12} years {total % 12} mons"
    if base == "interval day to second":
        return day_time(value)
    if base == "array":
        return "[" + ", ".join(render(item, args[0]) for item in value) + "]"
    if base == "map":  # JSON object keys: numbers and booleans as their JSON text
        parse = json.loads if split_type(args[0])[0] in NUMERIC else str
        return "{" + ", ".join(f"{render(parse(key), args[0])}: {render(item, args[1])}"
                               for key, item in value.items()) + "}"
    if base == "row":
        fields = [arg.split(" ", 1) for arg in args]
        return "{" + ", ".join(f"{field[0]}: {render(item, field[-1])}"
                               for field, item in zip(fields, value)) + "}"
    return value if isinstance(value, str) else json.dumps(value)


def run(cursor: Any, sql: str) -> dict[str, Any]:
    """One statement's answer line."""
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
        columns = [{"name": column.name, "type": column.type_code}
                   for column in cursor.description or []]
        text = [[render(value, column["type"]) for value, column in zip(row, columns)]
                for row in rows]
    except trino.exceptions.TrinoQueryError as err:
        return {"ok": False, "message": err.message, "error_name": err.error_name,
                "error_type": err.error_type}
    except Exception as err:  # HTTP, connection, client or rendering: the bridge carries on
        return {"ok": False, "message": str(err), "error_name": None, "error_type": None}
    text = [[cell or "(empty)" for cell in row] for row in text]
    count = None
    if cursor.update_type is not None:  # the protocol's updateCount, or a write's `rows` value
        count = cursor.rowcount
        if count < 0:
            written = [row[0] for row in rows if [c["name"] for c in columns] == ["rows"]]
            count = written[0] if len(written) == 1 and isinstance(written[0], int) else 0
    return {"ok": True, "columns": columns, "rows": text, "update_count": count,
            "update_type": cursor.update_type}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--url", "--user", "--password"):  # --url: http(s)://HOST:PORT, the HTTP door
        parser.add_argument(flag, required=True)
    for flag in ("--catalog", "--schema", "--ca"):  # --ca: a CA certificate to trust (https)
        parser.add_argument(flag)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    session = requests.Session()
    session.trust_env = False
    if args.ca:
        session.verify = args.ca
    connection = trino.dbapi.connect(
        host=url.hostname, port=url.port, user=args.user, http_scheme=url.scheme,
        auth=BasicAuthentication(args.user, args.password), http_session=session,
        allow_insecure_auth=url.scheme == "http", catalog=args.catalog, schema=args.schema,
        source="osprey-sql-corpus", legacy_primitive_types=True)
    cursor = connection.cursor()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = run(cursor, json.loads(line)["sql"])
        except (ValueError, KeyError, TypeError) as err:
            answer = {"ok": False, "message": f"bad request line: {err}", "error_name": None,
                      "error_type": None}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    connection.close()


if __name__ == "__main__":
    main()
