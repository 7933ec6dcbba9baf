"""The root Typer app: global options, the error boundary, and the wiring of the sub-apps."""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from aigw import __version__
from aigw.boundary import ErrorBoundaryGroup
from aigw.commands._options import ForceOption, NoWaitOption, examples, set_invocation_options
from aigw.context import AppContext
from aigw.errors import Terminated

# The sub-apps in help order, as the attribute of their module in aigw.commands that holds
# them: "metrics" and "dashboard" are single commands, the rest are groups. A run imports only
# the module of the command it invokes: importing them all would slow every command.
COMMANDS: dict[str, str] = {
    "config": "app",
    "assistants": "app",
    "threads": "app",
    "messages": "app",
    "runs": "app",
    "sandbox": "app",
    "gateway": "app",
    "completions": "app",
    "migrate": "app",
    "breaker": "app",
    "logs": "app",
    "metrics": "metrics",
    "dashboard": "dashboard",
    "doctor": "app",
    "demo": "app",
}
ROOT_OPTIONS_WITH_A_VALUE = {"--gateway-url", "--home"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aigw {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    direct: bool | None = typer.Option(
        None,
        "--direct/--gateway",
        help="Rollback switch: call OpenAI directly (overrides USE_AI_GATEWAY).",
        show_default=False,
    ),
    base_url: str | None = typer.Option(
        None, "--gateway-url", help="Gateway base URL (overrides AI_GATEWAY_URL)."
    ),
    home: Path | None = typer.Option(
        None, "--home", help="Local state folder (overrides AIGW_HOME)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    force: bool = ForceOption,
    no_wait: bool = NoWaitOption,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Tell retries and cache answers on stderr, even piped."
    ),
) -> None:
    if not isinstance(ctx.obj, AppContext):  # tests may inject their own
        ctx.obj = AppContext(
            flags={
                "use_ai_gateway": None if direct is None else not direct,
                "ai_gateway_url": base_url,
                "home": home,
            }
        )
    set_invocation_options(ctx.obj, force=force, no_wait=no_wait, verbose=verbose)


def build_app(names: list[str] | None = None) -> typer.Typer:
    """The root app with the named sub-apps (all of them by default), in help order."""
    built = typer.Typer(
        name="aigw",
        cls=ErrorBoundaryGroup,
        help="The operator's console for OpenAI Assistants traffic through an AI gateway.",
        epilog=examples(
            'eval "$(aigw sandbox serve --env --detach)"',
            "aigw assistants list",
            "aigw metrics --since 24h",
        ),
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=False,  # static scripts instead: `aigw completions`
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(root)
    for name, attribute in COMMANDS.items():
        if names is not None and name not in names:
            continue
        module = importlib.import_module(f"aigw.commands.{name}")
        sub = getattr(module, attribute)
        if isinstance(sub, typer.Typer):
            built.add_typer(sub, name=name)
        else:
            built.command(name, epilog=getattr(module, "EXAMPLES", None))(sub)
    return built


def __getattr__(name: str) -> Any:
    # `aigw.cli.app`, the whole app (tests, completions), is built on first use.
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_named(args: list[str]) -> str | None:
    """The sub-app an argument list invokes (None: root help, --version, or a typo)."""
    takes_value = False
    for arg in args:
        if takes_value:
            takes_value = False
        elif arg in ROOT_OPTIONS_WITH_A_VALUE:
            takes_value = True
        elif arg in ("-h", "--help"):  # root help, whatever follows: it lists every command
            return None
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


# The root's own options (aigw --force runs …): written after the command they are moved in
# front of it, unless that command has an option of the same name.
ROOT_FLAGS = {"--force", "--no-wait", "--direct", "--gateway", "--verbose", "-v"}


def hoist_root_options(root: Any, args: list[str]) -> list[str]:
    """`aigw assistants list --force` as `aigw --force assistants list`."""
    command, at = root, 0
    while at < len(args):  # down to the invoked command, past the root's own options
        arg = args[at]
        subcommands = getattr(command, "commands", None) or {}
        if arg in ROOT_OPTIONS_WITH_A_VALUE and command is root:
            at += 2
        elif arg.startswith("-") and command is root:
            at += 1
        elif arg in subcommands:
            command, at = subcommands[arg], at + 1
        else:
            break
    if command is root:
        return args
    own = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    takes_value = {
        name
        for param in command.params
        if not getattr(param, "is_flag", True)
        for name in param.opts
    }
    kept, moved = args[:at], []
    rest = args[at:]
    i = 0
    while i < len(rest):
        arg, name = rest[i], rest[i].split("=", 1)[0]
        if arg == "--":
            kept += rest[i:]
            break
        if name in own:
            width = 2 if name in takes_value and "=" not in arg else 1
            kept += rest[i : i + width]
            i += width
        elif name in ROOT_FLAGS:
            moved.append(arg)
            i += 1
        elif name in ROOT_OPTIONS_WITH_A_VALUE:
            width = 1 if "=" in arg else 2
            moved += rest[i : i + width]
            i += width
        else:
            kept.append(arg)
            i += 1
    return moved + kept


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the command closes: its log rows are committed first.
    signal.signal(signal.SIGTERM, _terminate)
    # Typer turns every registered sub-app into click commands on each run: build only the one
    # invoked. Root help, typos, --version and completions get the full app.
    name = command_named(sys.argv[1:])
    # `completions` describes every command, so it gets them all.
    built = build_app(None if name in (None, "completions") else [name])
    if name is not None:
        import typer.main

        built(hoist_root_options(typer.main.get_command(built), sys.argv[1:]))
    else:
        built()
