"""The credential cache both clients share: a bounded LRU in memory, the freshness decision, the
refresh-ahead bookkeeping and the fallback to a still-valid credential. No I/O here.

Times are `time.monotonic()` deadlines, so a wall-clock jump neither expires nor revives a
credential. Reads take no lock: a hit is dict reads, a clock read and an attribute write. Every
change of the dicts (and of the set of running background refreshes) happens under `_lock`, which
is only ever held for those few operations, never across I/O.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from time import monotonic

from authpipe._errors import AuthpipeError
from authpipe._models import Credential

__all__ = ["BACKGROUND_COOLDOWN", "CacheKey", "CredentialCache", "Entry", "Index"]

CacheKey = tuple[str, str, str, str | None]
"""(provider, tenant_id, user_id, resource)"""

Index = dict[str, dict[str, dict[str | tuple[str, str], "Entry"]]]
"""provider → tenant_id → `user_id`, or `(user_id, resource)` for a resource's credential → entry"""

BACKGROUND_COOLDOWN = 5.0
"""Seconds after a background refresh of a key (failed or not) before another may start."""


class Entry:
    __slots__ = ("background_not_before", "credential", "expires", "fresh_until", "last_used")

    def __init__(self, credential: Credential, expires: float | None, fresh_until: float, now: float) -> None:
        self.credential = credential
        self.expires = expires
        """Monotonic deadline of `credential.expires_at`; None when the credential has no known expiry."""
        self.fresh_until = fresh_until
        """A hit, without further thought, while `fresh_until - now > min_ttl` (see `CredentialCache.plan`)."""
        self.last_used = now
        self.background_not_before = 0.0


class CredentialCache:
    """Credentials by (provider, tenant_id, user_id, resource), at most `max_size` of them.

    LRU by a last-used stamp written on every hit rather than by reordering the dict: a hit then
    stays a lock-free attribute write, and the cost moves to eviction (a scan for the oldest
    stamp), which only happens when a credential is stored, right after a network round trip.
    """

    def __init__(self, max_size: int, refresh_ahead: float, no_expiry_ttl: float) -> None:
        self.max_size = max_size
        self.refresh_ahead = refresh_ahead
        self.no_expiry_ttl = no_expiry_ttl
        self.entries: dict[CacheKey, Entry] = {}
        self.index: Index = {}
        """The same entries, for the sync client's hot path: three lookups by strings, whose hashes
        Python keeps, cost less than building, hashing and comparing a 4-tuple key. Never rebound
        (the client holds it)."""
        self._lock = threading.Lock()
        self._background: set[CacheKey] = set()

    def plan(self, key: CacheKey, min_ttl: float) -> tuple[Credential | None, bool]:
        """What a non-forced `get_credential` does: (the cached credential to return, or None to
        fetch one; whether to start a background refresh of `key`, which the caller then owns)."""
        entry = self.entries.get(key)
        if entry is None:
            return None, False
        now = monotonic()
        if entry.expires is None:
            # The provider gave no lifetime: re-ask the server every `no_expiry_ttl` seconds, so a
            # revocation or a rotation is noticed; `min_ttl` cannot be judged.
            if now < entry.fresh_until:
                entry.last_used = now
                return entry.credential, False
            return None, False
        remaining = entry.expires - now
        if remaining <= min_ttl:
            return None, False
        entry.last_used = now
        if remaining > min_ttl + self.refresh_ahead:
            return entry.credential, False
        return entry.credential, self._claim_background(key, entry, now)

    def _claim_background(self, key: CacheKey, entry: Entry, now: float) -> bool:
        with self._lock:
            if key in self._background or entry.background_not_before > now:
                return False
            self._background.add(key)
            return True

    def background_finished(self, key: CacheKey, outcome: Credential | BaseException) -> None:
        """Record a background refresh's outcome. A failure is swallowed (the cached credential is
        served until it is due) except 404/410, which evict; either way no new background refresh
        of `key` starts for `BACKGROUND_COOLDOWN` seconds."""
        if isinstance(outcome, Credential):
            self.store(key, outcome)
        elif isinstance(outcome, AuthpipeError) and outcome.status in (404, 410):
            self.evict(key)
        entry = self.entries.get(key)
        if entry is not None:
            entry.background_not_before = monotonic() + BACKGROUND_COOLDOWN
        with self._lock:
            self._background.discard(key)

    def store(self, key: CacheKey, credential: Credential, *, force: bool = False) -> None:
        """Keep `credential` for `key`, unless a cached one expires later (a slow answer racing a
        newer one) and the caller did not force a refresh."""
        if self.max_size <= 0:
            return
        now = monotonic()
        if credential.expires_at is None:
            expires = None
            fresh_until = now + self.no_expiry_ttl
        else:
            expires = now + (credential.expires_at - datetime.now(UTC)).total_seconds()
            fresh_until = expires - self.refresh_ahead
        entry = Entry(credential, expires, fresh_until, now)
        with self._lock:
            existing = self.entries.get(key)
            if not force and existing is not None and _expires_earlier(credential, existing.credential):
                return
            self._put(key, entry)
            while len(self.entries) > self.max_size:
                self._drop(min(self.entries, key=lambda k: self.entries[k].last_used))

    def after_error(self, key: CacheKey, error: AuthpipeError, *, force: bool) -> Credential | None:
        """On a failed fetch: evict on 404/410; for a transient failure (no answer, 429, 5xx) of a
        non-forced call, the cached credential if it has not expired yet (even inside `min_ttl`).
        None means: raise `error`."""
        if error.status in (404, 410):
            self.evict(key)
            return None
        if force or not error.is_transient:
            return None
        entry = self.entries.get(key)
        if entry is not None and (entry.expires is None or entry.expires > monotonic()):
            return entry.credential
        return None

    def evict(self, key: CacheKey) -> None:
        with self._lock:
            self._drop(key)

    def evict_connection(self, connection_id: str) -> None:
        with self._lock:
            for key in [k for k, e in self.entries.items() if e.credential.connection_id == connection_id]:
                self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.index.clear()

    # `entries` and `index` change together, under `_lock`, in these two only.

    def _put(self, key: CacheKey, entry: Entry) -> None:
        provider, tenant_id, user_id, resource = key
        self.entries[key] = entry
        self.index.setdefault(provider, {}).setdefault(tenant_id, {})[user_id if resource is None else (user_id, resource)] = entry

    def _drop(self, key: CacheKey) -> None:
        if self.entries.pop(key, None) is None:
            return
        provider, tenant_id, user_id, resource = key
        tenants = self.index[provider]
        users = tenants[tenant_id]
        del users[user_id if resource is None else (user_id, resource)]
        if not users:  # no empty dicts left behind
            del tenants[tenant_id]
            if not tenants:
                del self.index[provider]


def _expires_earlier(new: Credential, old: Credential) -> bool:
    return new.expires_at is not None and old.expires_at is not None and new.expires_at < old.expires_at
