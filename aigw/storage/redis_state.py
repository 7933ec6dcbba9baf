"""The shared state (aigw/common/state.py) in Redis, for gateways on many machines.

`RedisState` (the CLI, blocking) and `AsyncRedisState` (the gateway server's event loop) send
the same commands: key names, arguments and the reading of answers are this module's
functions, so the two differ only in `await`. Every decision that reads and writes is one
Lua script, atomic on the server, running the steps of aigw/common/state.py: the GCRA slot,
the pause, the half-open probe claim and the breaker count. Cache entries are hashes with a
TTL in Redis, indexed by tag in sorted sets (trimmed of expired entries on each put) that
`cache_drop` empties in one script. Redis 7.0 or later (SET … NX GET).

Each call is bounded by AIGW_STATE_TIMEOUT (socket timeouts, and on the event loop a deadline
around the whole call); a broken pooled connection is reconnected once, a timeout is not
retried. The `redis` package is imported here only, and only when AIGW_STATE_URL asks for it.
One Redis (with replicas or Sentinel behind one URL), not Redis Cluster: the scripts touch
keys the caller does not name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import orjson

from aigw.common.state import (
    MAX_SHARED_PAUSE,
    Admission,
    AsyncSharedState,
    BreakerRow,
    BreakerRule,
    CacheEntry,
    Gcra,
    SharedState,
)

T = TypeVar("T")
PREFIX = "aigw:"

# The GCRA step of aigw/common/state.py on bucket `key`: the seconds until a slot is free, and
# the bucket's arrival time once it is taken (numbers go out as text: Lua would cut them to
# integers).
SLOT = """
local function slot(key, now, interval, tolerance, max_pause)
  local stored = redis.call('GET', key)
  local tat = stored and tonumber(stored) or now
  if tat < now then tat = now end
  local cap = now + tolerance + interval + max_pause
  if tat > cap then tat = cap end
  local delay = tat - tolerance - now
  if delay < 0 then delay = 0 end
  return delay, tat + interval
end
local function take(key, now, new)
  redis.call('SET', key, string.format('%.17g', new), 'PX', math.ceil((new - now) * 1000) + 1000)
end
"""
# KEYS[1] the bucket; ARGV now, interval, tolerance, max pause, reserve (1/0): the seconds to
# wait, the slot taken unless it is in the future and not reserved.
GCRA = (
    SLOT
    + """
local now = tonumber(ARGV[1])
local delay, new = slot(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
if delay == 0 or ARGV[5] == '1' then take(KEYS[1], now, new) end
return string.format('%.17g', delay)
"""
)
# A request's state work before it goes upstream, in one round trip: KEYS the buckets, then
# the cache entry to read (if any); ARGV now, max pause, then each bucket's interval and
# tolerance. A slot of every bucket or none: {'0', -1, the entry's fields} or {seconds to
# wait, the index of the bucket without a slot, {}}.
ADMIT = (
    SLOT
    + """
local now, max_pause = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = (#ARGV - 2) / 2
local taken = {}
for i = 1, n do
  local delay, new = slot(KEYS[i], now, tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i]),
    max_pause)
  if delay > 0 then return {string.format('%.17g', delay), i - 1, {}} end
  taken[i] = new
end
for i = 1, n do take(KEYS[i], now, taken[i]) end
if #KEYS > n then return {'0', -1, redis.call('HGETALL', KEYS[n + 1])} end
return {'0', -1, {}}
"""
)
# KEYS[1] the bucket; ARGV until, now. A pause never shortens one already stored.
PAUSE = """
local untl, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = stored and tonumber(stored) or now
if untl > tat then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil((untl - now) * 1000) + 1000)
end
return 0
"""
# KEYS[1] the breaker; ARGV now, probe timeout. Nil: the call goes (closed, or it is now the
# one half-open probe); else the row's fields, which refuse it.
CLAIM = """
local row = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_at', 'probe_at', 'last_error')
if not row[1] or row[1] == 'closed' then return nil end
local now = tonumber(ARGV[1])
local probe_at = row[4] and tonumber(row[4]) or 0
local refuses
if row[1] == 'open' then refuses = probe_at - now > 0
else refuses = now - probe_at < tonumber(ARGV[2]) end
if refuses then return row end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_at', ARGV[1])
return nil
"""
# KEYS[1] the breaker; ARGV failure (1/0), now, failures to open, cooldown, error ('' none).
RECORD = """
local row = redis.call('HMGET', KEYS[1], 'state', 'failures')
local state, failures = row[1] or 'closed', tonumber(row[2] or '0')
if ARGV[1] == '0' then
  if not row[1] or (state == 'closed' and failures == 0) then return 0 end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', '0')
  return 1
end
failures = failures + 1
redis.call('DEL', KEYS[1])
if state == 'half_open' or failures >= tonumber(ARGV[3]) then
  local now = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', tostring(failures),
    'opened_at', ARGV[2], 'probe_at', string.format('%.17g', now + tonumber(ARGV[4])))
else
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', tostring(failures))
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[5]) end
return 1
"""
# KEYS[1] the entry, KEYS[2] its tag's index; ARGV keep (ms), then the entry's fields and
# values. The index is a sorted set scored by each entry's expiry on the server's clock: the
# put trims the entries already gone, and the index lives as long as its last entry.
PUT = """
local keep = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZADD', KEYS[2], now + keep, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
return 0
"""
# KEYS the tags' indexes. Deletes their entries and the indexes; returns how many entries
# were there.
DROP = """
local dropped = 0
for _, tag in ipairs(KEYS) do
  for _, key in ipairs(redis.call('ZRANGE', tag, 0, -1)) do
    dropped = dropped + redis.call('DEL', key)
  end
  redis.call('DEL', tag)
end
return dropped
"""
SCRIPTS = {
    "gcra": GCRA,
    "admit": ADMIT,
    "pause": PAUSE,
    "claim": CLAIM,
    "record": RECORD,
    "put": PUT,
    "drop": DROP,
}
_BREAKER_FIELDS = ["state", "failures", "opened_at", "probe_at", "last_error"]
_KEY_FIELDS = ["fingerprint", "announced"]


# -- key names, arguments, answers (shared by both clients) ------------------------------------
def _cache(key: str) -> str:
    return f"{PREFIX}cache:{key}"


def _tag(tag: str) -> str:
    return f"{PREFIX}tag:{tag}"


def _rate(name: str) -> str:
    return f"{PREFIX}rate:{name}"


def _breaker(host: str) -> str:
    return f"{PREFIX}breaker:{host}"


def _remembered(scope: str) -> str:
    return f"{PREFIX}key:{scope}"


def _idempotency(fingerprint: str) -> str:
    return f"{PREFIX}idem:{fingerprint}"


def _idempotency_set(proposed: str, retry: bool, keep_for: float) -> dict[str, Any]:
    """SET's options: a retry takes the key already there (NX GET: atomic), a first try
    replaces it."""
    keep_ms = max(1, int(keep_for * 1000))
    return {"px": keep_ms, "nx": True, "get": True} if retry else {"px": keep_ms}


def _idempotency_answer(proposed: str, found: Any, retry: bool) -> str:
    return found.decode() if retry and isinstance(found, bytes) else proposed


def _num(value: float) -> str:
    return repr(float(value))  # exact: the scripts read it back as the same double


def _gcra_args(rule: Gcra, now: float, reserve: bool) -> list[str]:
    return [
        _num(now),
        _num(rule.interval),
        _num(rule.tolerance),
        _num(MAX_SHARED_PAUSE),
        "1" if reserve else "0",
    ]


def _admit_args(
    buckets: Sequence[tuple[str, Gcra]], now: float, key: str | None
) -> tuple[list[str], list[str]]:
    """The admit script's keys and arguments."""
    keys = [_rate(name) for name, _ in buckets]
    args = [_num(now), _num(MAX_SHARED_PAUSE)]
    for _, rule in buckets:
        args += [_num(rule.interval), _num(rule.tolerance)]
    return keys if key is None else [*keys, _cache(key)], args


def _admission(key: str | None, answer: list[Any]) -> Admission:
    delay, refused_by, fields = answer
    if int(refused_by) >= 0:
        return Admission(float(delay), int(refused_by))
    return Admission(entry=None if key is None else _entry(key, _pairs(fields)))


def _record_args(now: float, rule: BreakerRule, failure: bool, error: str | None) -> list[str]:
    cooldown = _num(rule.cooldown)
    return ["1" if failure else "0", _num(now), str(rule.failures_to_open), cooldown, error or ""]


def _put_args(entry: CacheEntry, keep_for: float) -> tuple[list[str], list[Any]]:
    """The put script's keys and arguments for an entry kept `keep_for` seconds."""
    fields = {
        "tag": entry.tag,
        "url": entry.url,
        "stored_at": _num(entry.stored_at),
        "status": str(entry.status),
        "headers": orjson.dumps(entry.headers),
        "body": entry.body,
    }
    args: list[Any] = [str(max(1, int(keep_for * 1000)))]
    for name, value in fields.items():
        args += [name, value]
    return [_cache(entry.key), _tag(entry.tag)], args


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def _float(value: bytes | str | None) -> float | None:
    return float(value) if value is not None else None


def _entry(key: str, fields: dict[Any, Any]) -> CacheEntry | None:
    if not fields:
        return None
    return CacheEntry(
        key,
        fields[b"tag"].decode(),
        fields[b"url"].decode(),
        float(fields[b"stored_at"]),
        int(fields[b"status"]),
        [(n, v) for n, v in orjson.loads(fields[b"headers"])],
        fields[b"body"],
    )


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """HGETALL's answer as a script returns it (field, value, …) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _row(host: str, values: list[Any] | None) -> BreakerRow | None:
    """A breaker row from its fields in _BREAKER_FIELDS order (None: no row)."""
    if not values or values[0] is None:
        return None
    state, failures, opened_at, probe_at, last_error = values
    return BreakerRow(
        host,
        _text(state) or "closed",
        int(failures or 0),
        _float(opened_at),
        _float(probe_at),
        _text(last_error),
    )


def _key_pair(values: list[Any]) -> tuple[str, bool] | None:
    fingerprint, announced = values
    if fingerprint is None:
        return None
    return fingerprint.decode(), announced == b"1"


def _remember_mapping(fingerprint: str, announced: bool) -> dict[Any, Any]:
    return {"fingerprint": fingerprint, "announced": "1" if announced else "0"}


def connection_options(timeout: float, retry_class: Any) -> dict[str, Any]:
    """Pool options: every socket wait bounded by `timeout`; a dropped pooled connection
    (Redis restarted) is redialled once, a timeout is not retried (it would double the bound)."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": retry_class(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "max_connections": 64,
        "timeout": timeout,  # waiting for a free pooled connection
    }


def state_errors() -> tuple[type[BaseException], ...]:
    """What a call to an unreachable, slow or failing Redis raises."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


# -- the two clients -------------------------------------------------------------------------
class RedisState(SharedState):
    """The shared state in Redis through a blocking connection pool (the CLI)."""

    def __init__(self, url: str, *, timeout: float):
        import redis
        from redis.retry import Retry

        pool = redis.BlockingConnectionPool.from_url(url, **connection_options(timeout, Retry))
        self.client = redis.Redis(connection_pool=pool)
        self.scripts = {name: self.client.register_script(src) for name, src in SCRIPTS.items()}

    def cache_get(self, key: str) -> CacheEntry | None:
        return _entry(key, self.client.hgetall(_cache(key)))

    def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        keys, args = _put_args(entry, keep_for)
        self.scripts["put"](keys=keys, args=args)

    def cache_drop(self, tags: list[str]) -> int:
        return int(self.scripts["drop"](keys=[_tag(t) for t in tags]))

    def rate_take(self, name: str, rule: Gcra, now: float, *, reserve: bool) -> float:
        return float(self.scripts["gcra"](keys=[_rate(name)], args=_gcra_args(rule, now, reserve)))

    def rate_pause(self, name: str, until: float, now: float) -> None:
        self.scripts["pause"](keys=[_rate(name)], args=[_num(until), _num(now)])

    def rate_reset(self) -> int:
        return self._delete_matching(_rate("*"))

    def breaker_get(self, host: str) -> BreakerRow | None:
        return _row(host, self.client.hmget(_breaker(host), _BREAKER_FIELDS))

    def breaker_all(self) -> list[BreakerRow]:
        start = len(_breaker(""))
        hosts = sorted(k.decode()[start:] for k in self.client.scan_iter(match=_breaker("*")))
        rows = [self.breaker_get(host) for host in hosts]
        return [row for row in rows if row is not None]

    def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        found = self.scripts["claim"](
            keys=[_breaker(host)], args=[_num(now), _num(rule.probe_timeout)]
        )
        return _row(host, found)

    def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        self.scripts["record"](keys=[_breaker(host)], args=_record_args(now, rule, failure, error))

    def breaker_reset(self, host: str | None = None) -> int:
        if host is None:
            return self._delete_matching(_breaker("*"))
        return int(self.client.delete(_breaker(host)))

    def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        return _key_pair(self.client.hmget(_remembered(scope), _KEY_FIELDS))

    def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        self.client.hset(_remembered(scope), mapping=_remember_mapping(fingerprint, announced))

    def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        options = _idempotency_set(proposed, retry, keep_for)
        found = self.client.set(_idempotency(fingerprint), proposed, **options)
        return _idempotency_answer(proposed, found, retry)

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()

    def _delete_matching(self, pattern: str) -> int:
        keys = list(self.client.scan_iter(match=pattern))
        return int(self.client.delete(*keys)) if keys else 0


class AsyncRedisState(AsyncSharedState):
    """The shared state in Redis through redis.asyncio's connection pool (the gateway server);
    each call ends within `timeout`, whatever the sockets do."""

    def __init__(self, url: str, *, timeout: float):
        import redis.asyncio
        from redis.asyncio.retry import Retry

        options = connection_options(timeout, Retry)
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, **options)
        self.client = redis.asyncio.Redis(connection_pool=pool)
        self.scripts = {name: self.client.register_script(src) for name, src in SCRIPTS.items()}
        self.timeout = timeout

    async def _bounded(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self.timeout):
            return await call

    async def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        keys, args = _put_args(entry, keep_for)
        await self._bounded(self.scripts["put"](keys=keys, args=args))

    async def cache_drop(self, tags: list[str]) -> int:
        return int(await self._bounded(self.scripts["drop"](keys=[_tag(t) for t in tags])))

    async def admit(
        self, buckets: Sequence[tuple[str, Gcra]], now: float, key: str | None
    ) -> Admission:
        keys, args = _admit_args(buckets, now, key)
        answer = await self._bounded(self.scripts["admit"](keys=keys, args=args))
        return _admission(key, answer)

    async def breaker_get(self, host: str) -> BreakerRow | None:
        return _row(host, await self._bounded(self.client.hmget(_breaker(host), _BREAKER_FIELDS)))

    async def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        args = [_num(now), _num(rule.probe_timeout)]
        return _row(
            host, await self._bounded(self.scripts["claim"](keys=[_breaker(host)], args=args))
        )

    async def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        args = _record_args(now, rule, failure, error)
        await self._bounded(self.scripts["record"](keys=[_breaker(host)], args=args))

    async def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        found = await self._bounded(self.client.hmget(_remembered(scope), _KEY_FIELDS))
        return _key_pair(found)

    async def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        mapping = _remember_mapping(fingerprint, announced)
        await self._bounded(self.client.hset(_remembered(scope), mapping=mapping))

    async def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        options = _idempotency_set(proposed, retry, keep_for)
        found = await self._bounded(self.client.set(_idempotency(fingerprint), proposed, **options))
        return _idempotency_answer(proposed, found, retry)

    async def settle(self) -> None:
        """Nothing is kept back: every call is sent at once."""

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()
