"""Seed a benchmark tenant straight into a SQLite database, and cache the result.

The tenant and its API key go through the store (``SqliteStore`` + ``create_tenant`` /
``create_api_key``), so the schema, migrations and key hashing are the gateway's own. Users and
group members are then bulk-inserted with ``executemany`` in large transactions, using the column
mapping of :mod:`gateway.store.rows` (``user_columns`` / ``user_email_rows`` / ``group_columns``):
the rows are exactly what ``SqlOps.insert_user`` would write, only faster (1,000,000 users in a
minute or two instead of an hour of HTTP POSTs).

A seeded database is cached under ``<cache>/seed-u<N>-m<M>-v<SEED_VERSION>.db`` with a ``.json``
sidecar holding the tenant id, the API key and the group id; a rerun with the same sizes reuses it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from gateway.clock import now
from gateway.identity.tenants import create_api_key, create_tenant
from gateway.store.rows import MEMBER_INSERT_COLUMNS, MEMBER_VALUES, group_columns, member_values, user_columns, user_email_rows
from gateway.store.sqlite import SqliteStore

# Bump when the generated documents change, so cached databases are rebuilt.
SEED_VERSION = 4
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

GIVEN = [
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Elijah", "Amelia", "James", "Sophia", "William", "Isabella",
    "Lucas", "Mia", "Henry", "Evelyn", "Theodore", "Harper", "Jack", "Luna", "Levi", "Camila", "Mateo",
    "Gianna", "Sebastian", "Elizabeth", "Daniel", "Eleanor", "Jamal", "Priya", "Wei", "Yuki", "Fatima",
]
FAMILY = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Nguyen", "Okafor", "Kowalski",
]
TITLES = [
    "Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager", "Product Manager",
    "Account Executive", "Sales Development Representative", "Customer Success Manager", "Data Analyst",
    "Financial Analyst", "HR Business Partner", "Recruiter", "Designer", "Marketing Specialist",
    "Director of Operations", "Support Specialist", "Security Analyst", "Site Reliability Engineer",
    "Legal Counsel", "Office Manager", "Vice President, Sales", "Chief of Staff", "QA Engineer", "Intern",
]
#: substrings for the ``title co`` scenario (case differs from the stored titles on purpose)
TITLE_NEEDLES = ["engineer", "MANAGER", "Analyst", "counsel", "Specialist", "intern"]


def needles(doc: dict[str, Any]) -> dict[str, str]:
    """Selective substrings of one seeded user, for the index-assisted ``co``/``sw``/``ew`` scenarios.

    ``userName`` is ``Given.Family<7 digits>@domain``: the family name's last two letters and the seven
    digits match this one user whatever the tenant's size; the work email's ``<digits>@`` likewise; the
    externalId's last 6 hex digits end only its own; displayName ``sw`` the given name and the family
    name's first letter (about one user in 1,000 at any size: its cost grows with the matches).
    """
    un = doc["userName"]
    d = next(i for i, c in enumerate(un) if c.isdigit())
    given, family = doc["name"]["givenName"], doc["name"]["familyName"]
    return {
        "username_co": un[d - 2 : d + 7],
        "email_co": un[d : d + 7] + "@",
        "displayname_sw": f"{given} {family[0]}",
        "externalid_ew": doc["externalId"][-6:],
    }

DOMAINS = ["example.com", "example.org", "corp.example.net"]


@dataclass
class Seeded:
    path: str
    tenant_id: str
    api_key: str
    group_id: str
    users: int
    members: int
    seed_seconds: float
    # an empty second tenant for the create scenario, so creates never grow the measured tenant
    create_tenant_id: str = ""
    create_api_key: str = ""


def user_doc(i: int, rng: random.Random) -> dict[str, Any]:
    """A realistic stored ``data`` document for user number ``i`` (shape of ``prepare_write``'s output)."""
    given = GIVEN[rng.randrange(len(GIVEN))]
    family = FAMILY[rng.randrange(len(FAMILY))]
    domain = DOMAINS[i % len(DOMAINS)]
    user_name = f"{given}.{family}{i:07d}@{domain}"
    doc: dict[str, Any] = {
        "userName": user_name,
        "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
        "displayName": f"{given} {family}",
        "emails": [{"value": user_name.lower(), "type": "work", "primary": True}],
        "active": rng.random() > 0.05,
        "title": TITLES[rng.randrange(len(TITLES))],
        "externalId": f"00u{i:012x}",
        "schemas": [USER_SCHEMA],
    }
    if i % 4 == 0:  # some users carry a second (home) address
        doc["emails"].append({"value": f"{given}.{family}.{i}@mail.example".lower(), "type": "home"})
    return doc


def _user_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _check_against_prepare_write(doc: dict[str, Any]) -> None:
    """Guard against drift: the generated document must be what the gateway itself would store."""
    from gateway.core.resource import prepare_write
    from gateway.core.schema import user_type

    body = {k: v for k, v in doc.items()}
    prepared = prepare_write(body, user_type()).data
    if prepared != doc:
        raise SystemExit(f"seed document differs from prepare_write output:\n{doc}\n{prepared}")


def _user_rows(
    tenant_id: str, n: int, ts: str
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    rng = random.Random(20240601)
    for i in range(n):
        uid = _user_id(rng)
        data = user_doc(i, rng)
        c = user_columns(data)
        row = (
            tenant_id, uid, c["user_name"], c["user_name_ci"], c["external_id"], c["display_name"],
            c["display_name_ci"], c["active"], c["email_ci"], "[]", "scim", orjson.dumps(data).decode(), 1, ts, ts,
        )
        emails = [(tenant_id, uid, v, t, p) for v, t, p in user_email_rows(data)]
        yield row, emails


_INSERT_USER = (
    "INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, display_name, display_name_ci,"
    " active, email_ci, roles, provisioned_by, data, version, created, last_modified)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EMAIL = "INSERT INTO user_emails (tenant_id, user_id, value_ci, type, is_primary) VALUES (?, ?, ?, ?, ?)"


async def _create_tenants(path: str) -> tuple[str, str, str, str]:
    store = SqliteStore(path)
    await store.open()  # applies the migrations
    try:
        tenant = await create_tenant(store, "bench", idp="generic", scim_enabled=True)
        key = await create_api_key(store, tenant.id, "bench")
        creates = await create_tenant(store, "bench-create", idp="generic", scim_enabled=True)
        ckey = await create_api_key(store, creates.id, "bench-create")
        return tenant.id, key.key, creates.id, ckey.key
    finally:
        await store.close()


def seed(path: Path, users: int, members: int, *, batch: int = 50_000, log: Any = print) -> Seeded:
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    tenant_id, api_key, create_id, create_key = asyncio.run(_create_tenants(str(path)))

    rng = random.Random(7)
    _check_against_prepare_write(user_doc(0, rng))

    ts = now()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB page cache while seeding
    conn.execute("PRAGMA temp_store = MEMORY")
    member_ids: list[str] = []
    done = 0
    gen = _user_rows(tenant_id, users, ts)
    while done < users:
        rows: list[tuple[Any, ...]] = []
        emails: list[tuple[Any, ...]] = []
        for row, erows in gen:
            rows.append(row)
            emails.extend(erows)
            if len(member_ids) < members:
                member_ids.append(row[1])
            if len(rows) >= batch:
                break
        conn.execute("BEGIN")
        # emails first (this connection does not enforce foreign keys): the substring index's trigger
        # on users then indexes each user with its emails in one go instead of once per email
        conn.executemany(_INSERT_EMAIL, emails)
        conn.executemany(_INSERT_USER, rows)
        conn.execute("COMMIT")
        done += len(rows)
        if users >= 200_000 and done % 200_000 < batch:
            log(f"  seeded {done:,}/{users:,} users ({time.perf_counter() - started:.0f} s)")

    gid = str(uuid.UUID(int=random.Random(99).getrandbits(128), version=4))
    gdata = {"displayName": f"Bench group {members:,}", "schemas": [GROUP_SCHEMA]}
    gc = group_columns(gdata)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, external_id, data, version, created,"
        " last_modified) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (tenant_id, gid, gc["display_name"], gc["display_name_ci"], gc["external_id"], orjson.dumps(gdata).decode(), ts, ts),
    )
    conn.executemany(
        f"INSERT INTO group_members {MEMBER_INSERT_COLUMNS} VALUES {MEMBER_VALUES}",
        [member_values(tenant_id, gid, m, "User") for m in member_ids],
    )
    conn.execute("COMMIT")
    # merge the substring indexes' segments, as a long-running database's automerge would have
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'").fetchall():
        conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return Seeded(str(path), tenant_id, api_key, gid, users, members, time.perf_counter() - started, create_id, create_key)


def seeded(cache: Path, users: int, members: int, *, log: Any = print) -> tuple[Seeded, bool]:
    """The cached seeded database for these sizes, building it when missing. Returns (seeded, reused)."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"seed-u{users}-m{members}-v{SEED_VERSION}"
    db, meta = cache / f"{stem}.db", cache / f"{stem}.json"
    if db.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return Seeded(**info), True
    meta.unlink(missing_ok=True)
    log(f"seeding {users:,} users and a {members:,}-member group into {db} ...")
    s = seed(db, users, members, log=log)
    meta.write_text(json.dumps(asdict(s), indent=2))  # written last: a half-built database is never reused
    log(f"  seeded in {s.seed_seconds:.1f} s")
    return s, False


def sample(db_path: str, tenant_id: str, users: int, members: int, k: int, seed_: int = 1) -> dict[str, list[Any]]:
    """Random users (id, userName) across the table, and ids of users outside the group (for PATCH)."""
    rng = random.Random(seed_)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        seqs = rng.sample(range(1, users + 1), min(k, users))
        ids: list[str] = []
        names: list[str] = []
        docs: list[dict[str, Any]] = []
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            rows = conn.execute(
                f"SELECT id, user_name, data FROM users WHERE tenant_id = ? AND seq IN ({', '.join('?' * len(chunk))})",
                (tenant_id, *chunk),
            ).fetchall()
            ids += [r[0] for r in rows]
            names += [r[1] for r in rows]
            docs += [orjson.loads(r[2]) for r in rows]
        rng.shuffle(ids)
        rng.shuffle(names)
        rng.shuffle(docs)
        outside = [
            r[0]
            for r in conn.execute(
                "SELECT u.id FROM users u WHERE u.tenant_id = ? AND NOT EXISTS (SELECT 1 FROM group_members m"
                " WHERE m.tenant_id = u.tenant_id AND m.member_id = u.id) ORDER BY u.seq DESC LIMIT ?",
                (tenant_id, min(k, users - members)),
            )
        ]
        return {"ids": ids, "names": names, "non_members": outside, "docs": docs}
    finally:
        conn.close()


# PostgreSQL --------------------------------------------------------------------------------------
async def seed_postgres(dsn: str, schema: str, users: int, members: int) -> Seeded:
    """The small dataset (same documents as the SQLite seed) in a fresh ``schema`` of a PostgreSQL database.

    The schema is dropped and rebuilt on every run (1,000 users take a second); the gateway is then
    pointed at it with ``?search_path=<schema>`` on its database URL.
    """
    import asyncpg

    from gateway.store.postgres import PostgresStore

    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    store = PostgresStore(dsn, schema=schema)
    await store.open()  # creates the schema and applies the migrations
    try:
        tenant = await create_tenant(store, "bench", idp="generic", scim_enabled=True)
        key = await create_api_key(store, tenant.id, "bench")
        creates = await create_tenant(store, "bench-create", idp="generic", scim_enabled=True)
        ckey = await create_api_key(store, creates.id, "bench-create")
    finally:
        await store.close()
    ts = now()
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
    try:
        rows: list[tuple[Any, ...]] = []
        emails: list[tuple[Any, ...]] = []
        member_ids: list[str] = []
        for row, erows in _user_rows(tenant.id, users, ts):
            r = list(row)
            r[7] = bool(r[7])  # active
            rows.append(tuple(r))
            emails.extend((t, u, v, ty, bool(p)) for t, u, v, ty, p in erows)
            if len(member_ids) < members:
                member_ids.append(row[1])
        cols = ["tenant_id", "id", "user_name", "user_name_ci", "external_id", "display_name", "display_name_ci",
                "active", "email_ci", "roles", "provisioned_by", "data", "version", "created", "last_modified"]
        async with conn.transaction():
            await conn.copy_records_to_table("users", records=rows, columns=cols)
            await conn.copy_records_to_table(
                "user_emails", records=emails, columns=["tenant_id", "user_id", "value_ci", "type", "is_primary"]
            )
            gid = str(uuid.UUID(int=random.Random(99).getrandbits(128), version=4))
            gdata = {"displayName": f"Bench group {members:,}", "schemas": [GROUP_SCHEMA]}
            gc = group_columns(gdata)
            await conn.execute(
                "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, external_id, data, version, created,"
                " last_modified) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
                tenant.id, gid, gc["display_name"], gc["display_name_ci"], gc["external_id"], orjson.dumps(gdata).decode(), ts,
            )
            await conn.copy_records_to_table(
                "group_members", records=[(tenant.id, gid, m, "User") for m in member_ids],
                columns=["tenant_id", "group_id", "member_id", "member_type"],
            )
            await conn.execute(  # what MEMBER_VALUES looks up per row, for the copied rows at once
                "UPDATE group_members m SET member_seq = u.seq FROM users u"
                " WHERE m.tenant_id = $1 AND u.tenant_id = m.tenant_id AND u.id = m.member_id", tenant.id,
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return Seeded(dsn, tenant.id, key.key, gid, users, members, time.perf_counter() - started, creates.id, ckey.key)
