"""Vault speed: sealing and opening a 2 KB token with a warm data-key cache, and unwrapping a
cold data key (crypto alone, and with the store query a cold cache costs).

    .venv/bin/python bench/vault.py [--rounds 2000]

Prints medians over batches; the target for the warm round trip is under 20 µs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Awaitable, Callable

from sqlalchemy.engine import make_url

from authpipe_server import projects
from authpipe_server.store.db import Database, upgrade
from authpipe_server.vault import MasterKey, Place, Vault
from authpipe_server.vault.envelope import DataKey
from authpipe_server.vault.keys import wrap_context

TOKEN = os.urandom(1024).hex().encode()  # 2 KB


async def median_us(op: Callable[[], Awaitable[object]], rounds: int, batch: int = 50) -> float:
    samples = []
    for _ in range(max(1, rounds // batch)):
        start = time.perf_counter_ns()
        for _ in range(batch):
            await op()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


def median_us_sync(op: Callable[[], object], rounds: int, batch: int = 50) -> float:
    samples = []
    for _ in range(max(1, rounds // batch)):
        start = time.perf_counter_ns()
        for _ in range(batch):
            op()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.connect(make_url(f"sqlite+aiosqlite:///{tmp}/bench.db"))
        await upgrade(db.engine)
        async with db.writing() as session:
            project = await projects.create_project(session, "bench")
        master = MasterKey.generate()
        vault = Vault(db, [master])
        await vault.verify_master_key()
        place = Place(project.id, "org_bench", "connections", "conn_bench", "secrets")
        blob = await vault.encrypt(place, TOKEN)  # creates and caches the data key

        encrypt = await median_us(lambda: vault.encrypt(place, TOKEN), rounds)
        decrypt = await median_us(lambda: vault.decrypt(place, blob), rounds)

        async def round_trip() -> bytes:
            return await vault.decrypt(place, await vault.encrypt(place, TOKEN))

        both = await median_us(round_trip, rounds)

        raw, context = os.urandom(32), wrap_context(project.id, "org_bench", 1)
        wrapped = master.wrap(raw, context)
        unwrap = median_us_sync(lambda: DataKey(master.unwrap(wrapped, context), 1), rounds)

        async def cold_read() -> bytes:
            vault.forget(project.id, "org_bench")
            return await vault.decrypt(place, blob)

        cold = await median_us(cold_read, rounds // 10, batch=10)
        await db.dispose()

    print(f"vault, 2 KB token, median of batches ({rounds} ops each):")
    print(f"  encrypt, warm data key          {encrypt:8.2f} µs")
    print(f"  decrypt, warm data key          {decrypt:8.2f} µs")
    print(f"  round trip, warm data key       {both:8.2f} µs   (target < 20 µs)")
    print(f"  unwrap a cold data key (crypto) {unwrap:8.2f} µs")
    print(f"  cold read incl. store query     {cold:8.2f} µs   (SQLite)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5000)
    asyncio.run(main(parser.parse_args().rounds))
