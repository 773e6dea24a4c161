"""The statements on the path of every image: conditional UPDATEs and INSERTs.

One UPDATE both checks the condition (enough credits, enough open images)
and hands back what the next step needs, so a hold or a settlement never
reads a row before changing it. PostgreSQL and SQLite (3.35 and later) both
support UPDATE … RETURNING; the ORM's update() does not, hence plain SQL
here, built only from the models' own table and column names (every value
is a query parameter).

The INSERTs skip Model.save(): on SQLite everything inside the transaction
holds the database's one write lock, and save() spends most of a hold's time
compiling SQL. Values still go through each field's own conversion to the
database, and the table's constraints (unique keys, checks) apply as ever.
No signals are sent for these rows; nothing listens to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections

from .models import Hold, MemberCap, Wallet


@dataclass(frozen=True)
class Statements:
    wallet_hold: str
    wallet_capture: str
    wallet_release: str
    hold_capture: str
    hold_release: str


def _names(model) -> tuple[str, dict[str, str]]:
    quote = connection.ops.quote_name
    columns = {}
    for field in model._meta.concrete_fields:
        columns[field.name] = columns[field.attname] = quote(field.column)
    return quote(model._meta.db_table), columns


@cache
def _build(vendor: str) -> Statements:
    wallet, w = _names(Wallet)
    hold, h = _names(Hold)
    cap, c = _names(MemberCap)
    # Params: total, total, team id, total, member id. The last column says
    # whether the member has any cap, so the caps are read only when they exist.
    wallet_hold = (
        f"UPDATE {wallet} SET {w['available']} = {w['available']} - %s, "  # noqa: S608
        f"{w['held']} = {w['held']} + %s "
        f"WHERE {w['team']} = %s AND {w['available']} >= %s AND NOT {w['frozen']} "
        f"RETURNING {w['id']}, {w['available']}, {w['low_balance_threshold']}, "
        f"{w['low_balance_alerted']}, {w['monthly_budget']}, "
        f"EXISTS (SELECT 1 FROM {cap} WHERE {cap}.{c['wallet']} = {wallet}.{w['id']} "
        f"AND {cap}.{c['member']} = %s)"
    )
    returning = (
        f"RETURNING {w['available']}, {w['low_balance_threshold']}, {w['low_balance_alerted']}"
    )
    # Params: amount, wallet id, amount (release: amount, amount, wallet id, amount).
    wallet_capture = (
        f"UPDATE {wallet} SET {w['held']} = {w['held']} - %s "  # noqa: S608
        f"WHERE {w['id']} = %s AND {w['held']} >= %s {returning}"
    )
    wallet_release = (
        f"UPDATE {wallet} SET {w['held']} = {w['held']} - %s, "  # noqa: S608
        f"{w['available']} = {w['available']} + %s "
        f"WHERE {w['id']} = %s AND {w['held']} >= %s {returning}"
    )

    # Params: images, hold id, images.
    def settle(counter: str) -> str:
        return (
            f"UPDATE {hold} SET {h[counter]} = {h[counter]} + %s "  # noqa: S608
            f"WHERE {h['id']} = %s AND {h['count']} >= {h['captured']} + {h['released']} + %s "
            f"RETURNING {h['wallet']}, {h['member']}, {h['tier']}, {h['size']}, "
            f"{h['unit_price']}"
        )

    return Statements(
        wallet_hold=wallet_hold,
        wallet_capture=wallet_capture,
        wallet_release=wallet_release,
        hold_capture=settle("captured"),
        hold_release=settle("released"),
    )


@cache
def _insert_sql(model, names: tuple[str, ...], vendor: str) -> tuple[str, tuple]:
    table, columns = _names(model)
    fields = tuple(model._meta.get_field(name) for name in names)
    marks = ", ".join(["%s"] * len(names))
    sql = (
        f"INSERT INTO {table} ({', '.join(columns[n] for n in names)}) "  # noqa: S608
        f"VALUES ({marks}) RETURNING {columns['id']}"
    )
    return sql, fields


PLAIN = (int, str, bool, type(None))  # passed to the driver as they are


def insert(model, values: dict) -> int:
    """Insert one row of `model` from field names → values; returns its id.

    Fields left out take their model default (a callable one is called).
    """
    db = connections[DEFAULT_DB_ALIAS]  # resolved once: the proxy looks it up per access
    row = dict(values)
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in row or field.attname in row:
            continue
        row[field.attname] = field.get_default()
    names = tuple(row)
    sql, fields = _insert_sql(model, names, db.vendor)
    params = [
        value if isinstance(value, PLAIN) else field.get_db_prep_save(value, db)
        for value, field in zip(row.values(), fields, strict=True)
    ]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def statements() -> Statements:
    return _build(connection.vendor)


def fetch_one(sql: str, params: list) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
