"""One health-check sweep: COUNT connections all due for a check, checked by one process's
CheckScheduler against the Spotify emulator (a child process seeded with their grants). Prints
the time per sweep and the process's peak RSS.

    .venv/bin/python bench/monitor.py [--count 100000] [--rate 1000] [--database-url URL]

`--rate` is the per-provider limit (checks/s); the server's default is 20/s per provider, which
is 432,000 checks per provider per 6-hour interval.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

import httpx

from credentials import seeded


async def sweep(count: int, rate: float, database_url: str | None) -> None:
    from sqlalchemy import func, select

    from authpipe_server.monitor.scheduler import CheckScheduler
    from authpipe_server.store.models import Connection

    async with seeded(count, database_url, due="check") as (runtime, port):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scheduler = CheckScheduler(runtime, rate_per_app=rate)
        started = time.perf_counter()
        while await scheduler.run_once():
            pass
        elapsed = time.perf_counter() - started
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        async with runtime.db.sessions() as session:
            checked = await session.scalar(select(func.count()).where(Connection.last_checked_at.is_not(None)))
            revoked = await session.scalar(select(func.count()).where(Connection.status != "active"))
        api_calls = httpx.get(f"http://127.0.0.1:{port}/_control/counts").json()["api"]
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"health-check sweep of {count} due connections, one process ({backend}), limit {rate:.0f}/s per provider:")
    print(f"  checked                    {checked} (emulator saw {api_calls} /v1/me calls; not active afterwards: {revoked})")
    print(f"  time per sweep             {elapsed:8.1f} s   ({count / elapsed:.0f} checks/s)")
    print(f"  peak RSS                   {rss_peak / 1024:8.1f} MiB (before the sweep: {rss_before / 1024:.1f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    asyncio.run(sweep(args.count, args.rate, args.database_url))
