#!/usr/bin/env python3
"""Fills a Cordon data folder's ledger of sightings for the provenance benchmark.

    make_ledger.py DB BANK_TXT N PLANT_JSONL

DB is the SQLite file of a data folder whose schema `cordon` has made (any command that
opens the store does). Writes N sightings whose PDQ hashes are the first N lines of
BANK_TXT (`pdq <hex>`, the index benchmark's seeded bank: half uniform, half clustered),
then, for every query image in PLANT_JSONL (`cordon hash` output), PLANT near copies of
its hash (a few bits flipped, as re-encodes and resizes do) posted over two years by
different accounts, so that image queries find a realistic history. Sightings are
spread over 2024-2026 in id order; each has an account, a source URL, a digest and a size.
Only standard-library Python.
"""

import datetime
import json
import random
import sqlite3
import sys

PLANT = 8  # near copies per query image

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
SPAN_SECONDS = 2 * 365 * 24 * 3600


def stamp(seconds: float) -> str:
    at = START + datetime.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def flipped(hex_hash: str, bits: int, rng: random.Random) -> str:
    value = int(hex_hash, 16)
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return f"{value:064x}"


def rows(bank_txt: str, n: int, plants: list[str], rng: random.Random):
    total = n + len(plants) * PLANT
    step = SPAN_SECONDS / max(total, 1)
    i = 0
    with open(bank_txt) as bank:
        for line in bank:
            if i == n:
                break
            parts = line.split()
            if len(parts) < 2 or parts[0] != "pdq":
                continue
            yield row(i, parts[1], step)
            i += 1
    if i < n:
        sys.exit(f"{bank_txt} holds only {i} hashes, {n} asked for")
    for plant in plants:
        for copy in range(PLANT):
            yield row(i, flipped(plant, rng.randint(0, 12) if copy else 0, rng), step)
            i += 1


def row(i: int, pdq: str, step: float):
    return (
        stamp(i * step),
        f"https://example.org/p/{i}",
        f"acct-{i % 250_000}",
        f"{(i * 2654435761) % (1 << 64):016x}" * 4,
        50_000 + i % 400_000,
        "jpeg",
        1024,
        768,
        pdq,
        90,
    )


def main() -> None:
    db, bank_txt, n, plant_jsonl = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    plants = []
    with open(plant_jsonl) as lines:
        for line in lines:
            record = json.loads(line)
            if "hash" in record:
                plants.append(record["hash"])
    rng = random.Random(20261129)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        conn.executemany(
            "INSERT INTO sighting (received_at, source_url, account_id, sha256, size, format,"
            " width, height, pdq, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(bank_txt, n, plants, rng),
        )
    count = conn.execute("SELECT count(*) FROM sighting").fetchone()[0]
    conn.close()
    print(json.dumps({"sightings": count, "planted_images": len(plants), "copies_each": PLANT}))


if __name__ == "__main__":
    main()
