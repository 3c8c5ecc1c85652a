"""The deterministic seed: same scale, same rows, byte for byte, on any machine.

Rows come from ``random.Random(SEED).random()`` only: Python guarantees that method's
sequence across versions for a given seed (``randint``/``choice`` carry no such promise).
Loading is one transaction of TRUNCATE + COPY, so re-seeding restores exactly the seeded
data (including rows that ``/updates`` or ``POST /api/troupes`` changed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg

SEED = 20_231_129
MAX_SCALE = 100
WORLD_ROWS = 10_000

# Per unit of scale; the circus tables grow with the scale, world and fortune do not.
LOCATIONS, PERFORMERS, TROUPES, COLLEGES = 100, 600, 100, 1_000
CLOWNS_PER_TROUPE = ACROBATS_PER_TROUPE = 3

FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
]

# Tables in an order that COPY can fill them (parents first) and their checksum order.
TABLES = {
    "world": ("id, randomnumber", "id"),
    "fortune": ("id, message", "id"),
    "location": ("id, line_1, line_2, line_3, zipcode", "id"),
    "performer": ("id, stage_name, kind, concentration", "id"),
    "troupe": ("id, name", "id"),
    "troupe_member": ("troupe_id, performer_id", "troupe_id, performer_id"),
    "college": ("id, name, location_id, troupe_id", "id"),
}
SERIAL_TABLES = ("location", "performer", "troupe", "college")

_STREETS = [
    "Big Top",
    "Sawdust",
    "Greasepaint",
    "Trapeze",
    "Juggler",
    "Unicycle",
    "Ringmaster",
    "Calliope",
    "Tightrope",
    "Carousel",
    "Popcorn",
    "Stilt",
]
_STREET_KINDS = ["Street", "Avenue", "Lane", "Road", "Boulevard", "Way"]
_TOWNS = ["Baraboo", "Sarasota", "Peru", "Delavan", "Bridgeport", "Hugo", "Somers", "Gibsonton"]
_STATES = ["WI", "FL", "IN", "CT", "OK", "NY"]
_FIRST = [
    "Bozo",
    "Pippo",
    "Coco",
    "Zippy",
    "Lulu",
    "Blinko",
    "Tuffy",
    "Dot",
    "Flip",
    "Gogo",
    "Mimi",
    "Pogo",
    "Sprocket",
    "Tilly",
    "Wobbles",
    "Ziggy",
]
_LAST = [
    "Bellamy",
    "Fratellini",
    "Grimaldi",
    "Kelly",
    "Popov",
    "Ringling",
    "Wallenda",
    "Zacchini",
    "Codona",
    "Leitzel",
    "Bale",
    "Loyal",
]
_CONCENTRATIONS = {
    "clown": ["pie throwing", "balloon animals", "pratfalls", "juggling", "seltzer", "mime"],
    "acrobat": ["trapeze", "tightrope", "trampoline", "contortion", "aerial silks", "tumbling"],
}
_ADJECTIVES = ["Amazing", "Flying", "Daring", "Jolly", "Great", "Fabulous", "Spinning", "Merry"]
_NOUNS = ["Zanies", "Tumblers", "Jesters", "Wanderers", "Spangles", "Daredevils", "Buffoons"]


class SeedError(ValueError):
    pass


@dataclass(frozen=True)
class SeedResult:
    scale: int
    checksum: str
    seconds: float
    rows: dict[str, int]


def validate_scale(scale: object) -> int:
    try:
        value = int(str(scale))
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_SCALE:
        raise SeedError(f"unknown scale {scale!r}: use an integer from 1 to {MAX_SCALE}")
    return value


class _Picker:
    """Deterministic choices built on ``random()`` alone (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def below(self, n: int) -> int:
        return int(self._rng.random() * n)

    def pick(self, items: list[str]) -> str:
        return items[self.below(len(items))]

    def shuffled(self, items: list[int]) -> list[int]:
        items = list(items)
        for i in range(len(items) - 1, 0, -1):  # Fisher-Yates
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
        return items


def generate(scale: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows for ``scale``, in primary-key order."""
    scale = validate_scale(scale)
    rng = _Picker(SEED)
    world = [(i, rng.below(WORLD_ROWS) + 1) for i in range(1, WORLD_ROWS + 1)]
    locations = [
        (
            i,
            f"{rng.below(9900) + 100} {rng.pick(_STREETS)} {rng.pick(_STREET_KINDS)}",
            f"Tent {rng.below(40) + 1}",
            f"{rng.pick(_TOWNS)}, {rng.pick(_STATES)}",
            f"{rng.below(90000) + 10000:05d}",
        )
        for i in range(1, LOCATIONS * scale + 1)
    ]
    performers = []
    for i in range(1, PERFORMERS * scale + 1):
        kind = "clown" if i % 2 else "acrobat"  # exactly half of each kind
        name = f"{rng.pick(_FIRST)} {rng.pick(_LAST)} {i}"
        performers.append((i, name, kind, rng.pick(_CONCENTRATIONS[kind])))
    troupe_count = TROUPES * scale
    troupes = [
        (i, f"The {rng.pick(_ADJECTIVES)} {rng.pick(_NOUNS)} No. {i}")
        for i in range(1, troupe_count + 1)
    ]
    # Each troupe gets 3 clowns and 3 acrobats; each performer is in exactly one troupe.
    clowns = rng.shuffled([p[0] for p in performers if p[2] == "clown"])
    acrobats = rng.shuffled([p[0] for p in performers if p[2] == "acrobat"])
    members: list[tuple[int, int]] = []
    for t in range(troupe_count):
        chosen = (
            clowns[t * CLOWNS_PER_TROUPE : (t + 1) * CLOWNS_PER_TROUPE]
            + acrobats[t * ACROBATS_PER_TROUPE : (t + 1) * ACROBATS_PER_TROUPE]
        )
        members.extend((t + 1, performer_id) for performer_id in sorted(chosen))
    colleges = [
        (
            i,
            f"{rng.pick(_TOWNS)} College of {rng.pick(_CONCENTRATIONS['clown']).title()} {i}",
            rng.below(LOCATIONS * scale) + 1,
            rng.below(troupe_count) + 1,
        )
        for i in range(1, COLLEGES * scale + 1)
    ]
    tables: dict[str, list[tuple[Any, ...]]] = {
        "world": world,
        "fortune": list(FORTUNES),
        "location": locations,
        "performer": performers,
        "troupe": troupes,
        "troupe_member": members,
        "college": colleges,
    }
    return tables


def schema_sql() -> str:
    return files("shared_fixtures").joinpath("schema.sql").read_text()


def apply_schema(conn: psycopg.Connection) -> None:
    conn.execute(schema_sql())


def seed(conn: psycopg.Connection, scale: int = 1) -> SeedResult:
    """Apply the schema and load the seed in one transaction; return its checksum."""
    started = time.perf_counter()
    data = generate(scale)
    with conn.transaction():
        apply_schema(conn)
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        with conn.cursor() as cur:
            for table, (columns, _) in TABLES.items():
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in data[table]:
                        copy.write_row(row)
            for table in SERIAL_TABLES:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        value = checksum(conn)
        conn.execute(
            "INSERT INTO stackbench_seed (id, scale, checksum) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET scale = EXCLUDED.scale, "
            "checksum = EXCLUDED.checksum, seeded_at = now()",
            (scale, value),
        )
    conn.execute(f"ANALYZE {', '.join(TABLES)}")
    rows = {table: len(data[table]) for table in TABLES}
    return SeedResult(scale, value, time.perf_counter() - started, rows)


def checksum(conn: psycopg.Connection) -> str:
    """One md5 over every seeded table's rows in key order: equal iff the data is equal."""
    parts = " || ".join(
        f"(SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY {order})), '') FROM {table} t)"
        for table, (_, order) in TABLES.items()
    )
    row = conn.execute(f"SELECT md5({parts})").fetchone()
    assert row is not None
    return str(row[0])


def seeded_state(conn: psycopg.Connection) -> tuple[int, str] | None:
    """(scale, checksum) recorded by the last seed, or None when never seeded."""
    try:
        row = conn.execute("SELECT scale, checksum FROM stackbench_seed WHERE id = 1").fetchone()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return None
    return (int(row[0]), str(row[1])) if row else None


def ensure_seeded(conn: psycopg.Connection, scale: int = 1) -> tuple[str, bool]:
    """Verify the data by checksum; re-seed when it differs. Returns (checksum, reseeded)."""
    scale = validate_scale(scale)
    state = seeded_state(conn)
    if state is not None and state[0] == scale and checksum(conn) == state[1]:
        return state[1], False
    return seed(conn, scale).checksum, True


def iter_table_counts(conn: psycopg.Connection) -> Iterator[tuple[str, int]]:
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        yield table, int(row[0]) if row else 0
