"""Cost of a Python SDK cache hit, beside the floor it is built on.

    .venv/bin/python bench/sdk_cache.py [--rounds 1501] [--number 1000]

Starts the sandbox (`authpipe dev` in a temporary directory, on a free port), makes a Bluesky
connection through the API and primes a sync `Authpipe` client with one real request. Then, in
the same run and interleaved round by round (so both see the same machine load), it times:

- hit: `ap.get_credential(provider=…, tenant_id=…, user_id=…)` on that warm key;
- baseline: a plain dict lookup with the same key plus a `time.monotonic()` read.

Prints the median of each in ns and µs and their ratio. Targets: hit under 1 µs, and within 3× of
the baseline. Every timed hit is checked to have made no HTTP request.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from time import monotonic

import httpx
from authpipe import Authpipe

AUTHPIPE = Path(sys.executable).with_name("authpipe")
PROVIDER, TENANT_ID, USER_ID = "bluesky", "org_acme", "bench_user"


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return super().handle_request(request)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(directory: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """`authpipe dev` in `directory`: the process, its URL and the project's secret key."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")}
    env |= {"AUTHPIPE_PORT": str(port), "AUTHPIPE_PUBLIC_URL": url}
    process = subprocess.Popen([str(AUTHPIPE), "dev"], cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise SystemExit("authpipe dev exited")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("authpipe dev did not come up within 30 s")
        time.sleep(0.1)
    return process, url, (directory / ".authpipe" / "default-secret-key").read_text().strip()


def measure(ap: Authpipe, rounds: int, number: int) -> tuple[float, float]:
    """Median ns per call of (hit, baseline), interleaved round by round."""
    entry = object()
    key = (PROVIDER, TENANT_ID, USER_ID, None)
    cache = {key: entry}
    scope = {"ap": ap, "cache": cache, "key": key, "monotonic": monotonic}
    hit = timeit.Timer("ap.get_credential(provider='bluesky', tenant_id='org_acme', user_id='bench_user')", globals=scope)
    baseline = timeit.Timer("cache.get(key); monotonic()", globals=scope)
    hits: list[float] = []
    baselines: list[float] = []
    for _ in range(rounds):
        hits.append(hit.timeit(number) / number * 1e9)
        baselines.append(baseline.timeit(number) / number * 1e9)
    return statistics.median(hits), statistics.median(baselines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1501)
    parser.add_argument("--number", type=int, default=1000, help="calls per round")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="authpipe-bench-"))
    process, url, secret = start_sandbox(directory)
    try:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        api.patch("/_sandbox/bluesky/_control/settings", json={"access_ttl": 7200}).raise_for_status()
        owner = {"provider": PROVIDER, "tenant_id": TENANT_ID, "user_id": USER_ID}
        made = api.post("/v1/connections", json=owner | {"identifier": "sandbox.test", "app_password": "sand-boxa-ppps-swrd"})
        made.raise_for_status()

        transport = CountingTransport()
        with Authpipe(secret_key=secret, base_url=url, transport=transport) as ap:
            primed = ap.get_credential(provider=PROVIDER, tenant_id=TENANT_ID, user_id=USER_ID)  # the one real request
            assert ap.get_credential(provider=PROVIDER, tenant_id=TENANT_ID, user_id=USER_ID) is primed and transport.count == 1
            hit_ns, baseline_ns = measure(ap, args.rounds, args.number)
            assert transport.count == 1, "a timed hit made an HTTP request"
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)

    ratio = hit_ns / baseline_ns
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}; {args.rounds} rounds x {args.number} calls, medians:"
    )
    print(f"  cache hit (Authpipe.get_credential, warm key): {hit_ns:7.1f} ns = {hit_ns / 1000:.3f} µs")
    print(f"  baseline (dict lookup + time.monotonic()):     {baseline_ns:7.1f} ns = {baseline_ns / 1000:.3f} µs")
    print(f"  ratio hit / baseline:                          {ratio:7.2f}x")
    print(f"  targets: hit < 1 µs: {'met' if hit_ns < 1000 else 'MISSED'}; within 3x: {'met' if ratio <= 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
