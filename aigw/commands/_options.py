"""Option bundles and small parsers shared by every command group."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from aigw.errors import UsageError

JsonOption = typer.Option(False, "--json", help="Print JSON (API objects as-is; lists as arrays).")
YesOption = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
HostOption = typer.Option("127.0.0.1", "--host", help="Address to listen on.")
MetadataOption = typer.Option(
    None, "--metadata", "-m", metavar="KEY=VALUE", help="Metadata pair; repeatable."
)
AllOption = typer.Option(False, "--all", help="Follow pages until the end.")


def parse_pairs(pairs: list[str] | None, option: str = "--metadata") -> dict[str, str] | None:
    """`["k=v", …]` → dict; None when the option was not given (so updates leave it alone)."""
    if pairs is None or not pairs:
        return None
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


# The API's own limit for instructions and a message's text (characters); a file is read up
# to that many characters' worth of bytes plus one, never to its end: /dev/zero must not fill
# the memory. JSON files (a tool's schema, tool outputs) are bounded in bytes.
MAX_TEXT_CHARS = 256_000
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
_CHUNK = 64 * 1024


def _read_bounded(path: Path, option: str, limit: int) -> bytes:
    """At most `limit` bytes of a file (or stdin for `-`); more is a usage error (exit 2).
    Read in chunks, so a signal (Ctrl-C, SIGTERM) is handled between them."""
    import sys

    name = "stdin" if str(path) == "-" else str(path)
    try:
        stream = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror}") from None
    parts: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = stream.read(min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {name}: {exc.strerror}") from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if size > limit:
        raise UsageError(f"{option}: {name} is larger than the limit of {limit:,} bytes")
    return b"".join(parts)


def read_text(path: Path, option: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A file's text, or `-` for stdin, with a one-line error instead of a traceback."""
    data = _read_bounded(path, option, 4 * max_chars)  # UTF-8: at most 4 bytes a character
    name = "stdin" if str(path) == "-" else str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{option}: {name} is not UTF-8 text") from None
    if len(text) > max_chars:
        raise UsageError(
            f"{option}: {name} has {len(text):,} characters; the API takes at most {max_chars:,}"
        )
    return text


def read_json(path: Path, option: str) -> Any:
    data = _read_bounded(path, option, MAX_JSON_BYTES)
    return parse_json(data, f"{option}: {path}")


def parse_json(data: str | bytes, what: str) -> Any:
    """JSON from the user, any failure one line naming `what` (exit 2): not JSON, not UTF-8,
    nested too deeply, a number too long for Python's int parsing."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise UsageError(f"{what} is nested too deeply") from None
    except ValueError as exc:  # bad UTF-8, an integer past the digit limit
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UsageError(f"{what} is not usable JSON ({reason})") from None
    if _depth_over(value, MAX_JSON_DEPTH):
        raise UsageError(f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether JSON nests deeper than `limit` (checked without recursion: every later step,
    redaction and the SDK's encoding included, recurses)."""
    level: list[Any] = [value]
    for _ in range(limit + 1):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return True


def confirm(question: str, yes: bool) -> None:
    """Ask unless --yes; without a terminal to ask on, refuse rather than guess."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} — refusing without confirmation", hint="pass --yes")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


# -- resilience knobs: they go into AppContext.command_options, which the transport layers read
ForceOption = typer.Option(
    False, "--force", help="Call even while the circuit breaker is open (put before the command)."
)
NoWaitOption = typer.Option(
    False,
    "--no-wait",
    help="Over the client-side rate limit, fail at once (exit 7) instead of waiting.",
)


def set_invocation_options(
    app_ctx: Any, *, force: bool, no_wait: bool, verbose: bool = False
) -> None:
    """Root-level knobs, and the callbacks through which the transport layers speak.

    Layers cannot print; they call `notify` (a one-off status line, always shown), and
    `on_wait` (a rate-limit wait), `on_retry` (a retry's wait) and `on_cache_hit` (an answer
    from the cache), which are told on a terminal, or with --verbose: piped, a script's
    stderr stays for errors.
    """
    from aigw.render import Output

    options = app_ctx.command_options  # a test's injected context may have set some already

    def told() -> bool:
        return bool(options.get("verbose")) or Output().stderr_is_terminal

    def notify(message: str) -> None:
        Output().note(message)

    def on_wait(seconds: float) -> None:
        if told():
            Output().note(
                f"rate limit AIGW_RATE_LIMIT reached: waiting {seconds:.1f} s for a slot…"
            )

    def on_retry(message: str) -> None:
        if told():
            Output().note(message)

    def on_cache_hit(age_seconds: float) -> None:
        from aigw.gateway.policies.cache import age_text

        if told():
            Output().note(f"cached {age_text(age_seconds)} ago — --no-cache for fresh")

    options["force"] = force or bool(options.get("force"))
    options["no_wait"] = no_wait or bool(options.get("no_wait"))
    options["verbose"] = verbose or bool(options.get("verbose"))
    options.setdefault("notify", notify)
    options.setdefault("on_wait", on_wait)
    options.setdefault("on_retry", on_retry)
    options.setdefault("on_cache_hit", on_cache_hit)


class Bundle:
    """Options declared once for several commands: the parameters of `build` (each a
    typer.Option) stand in a command's signature where the bundle is a parameter's default,
    and the command receives what `build` makes of them (see `with_bundles`)."""

    def __init__(self, build: Callable[..., Any]):
        self.build = build
        self.params = inspect.signature(build, eval_str=True).parameters


def with_bundles(command: Callable[..., None]) -> Callable[..., None]:
    """The command as Typer should see it: each Bundle parameter spelled out as its options."""
    own = inspect.signature(command).parameters
    bundles = {name: p.default for name, p in own.items() if isinstance(p.default, Bundle)}
    params = [
        q
        for name, p in own.items()
        for q in (bundles[name].params.values() if name in bundles else [p])
    ]

    @functools.wraps(command)
    def run(**values: Any) -> None:
        for name, bundle in bundles.items():
            values[name] = bundle.build(**{key: values.pop(key) for key in bundle.params})
        command(**values)

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    # Typer reads the types from here: the command's own (its module resolves them) and the
    # bundles' (already resolved in theirs).
    run.__annotations__ = {
        p.name: command.__annotations__[p.name] if p.name in own else p.annotation for p in params
    }
    return run


def _page_query(
    limit: int | None = typer.Option(None, "--limit", min=1, max=100, help="Page size (1–100)."),
    order: str | None = typer.Option(None, "--order", help="asc or desc by created_at."),
    after: str | None = typer.Option(None, "--after", help="Cursor: list objects after this ID."),
    before: str | None = typer.Option(
        None, "--before", help="Cursor: list objects before this ID."
    ),
) -> Any:
    from aigw.services.requests import ListQuery

    return ListQuery(limit=limit, order=order, after=after, before=before)


def _cache_choices(
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Neither answer from the local cache nor store the answer in it."
    ),
    max_age: str | None = typer.Option(
        None,
        "--max-age",
        metavar="AGE",
        help="Accept a cached answer up to AGE old: 30s, 5m, 1h (default AIGW_CACHE_TTL).",
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Say on stderr whether the answer came from the cache, its age, and any retry.",
    ),
) -> dict[str, Any]:
    from aigw.durations import parse_duration

    seconds = parse_duration(max_age, "--max-age", zero=True) if max_age is not None else None
    return {"no_cache": no_cache, "max_age": seconds, "verbose": verbose}


# A list command's --limit, --order, --after and --before, as a ListQuery.
PageOptions: Any = Bundle(_page_query)
# A cacheable read's --no-cache, --max-age and --verbose, for the cache layer.
CacheOptions: Any = Bundle(_cache_choices)


def set_cache_options(app_ctx: Any, choices: dict[str, Any]) -> None:
    """Hand a cacheable read's choices to the cache layer; a root-level --verbose stays on."""
    verbose = choices["verbose"] or bool(app_ctx.command_options.get("verbose"))
    app_ctx.command_options.update(choices, verbose=verbose)


def delete_confirmed(
    ctx: typer.Context,
    kind: str,
    object_id: str,
    delete: Callable[[Any, str], Any],
    *,
    yes: bool,
    json: bool,
) -> None:
    """The shape of every `delete` command: check the ID, ask (unless --yes), delete, report."""
    from aigw.context import app_context
    from aigw.render import Output
    from aigw.services.requests import check_id

    app_ctx = app_context(ctx)
    check_id(object_id, f"{kind}_id", enabled=app_ctx.settings.check_id_prefixes)
    confirm(f"Delete {kind} {object_id}?", yes)
    result = delete(app_ctx, object_id)
    out = Output(json)
    if json:
        out.json(result)
    else:
        out.success(f"deleted {result.id}")


# Every command's --help ends with its examples, as `gh` does (tests/test_help.py checks them).
def examples(*commands: str) -> str:
    """An epilog listing COMMANDS as typed. Click rewraps help text; the \\b line keeps this
    block as written."""
    return "\b\nExamples:\n" + "\n".join(f"  $ {command}" for command in commands)
