"""`aigw completions`: print, write or install the static shell completions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from aigw.commands._options import examples
from aigw.render import Output

app = typer.Typer(help="Shell completions for bash, zsh and fish.", no_args_is_help=True)

ShellArgument = typer.Argument(..., help="bash, zsh or fish.")


def command_tree(command: Any, name: str = "aigw") -> Any:
    """The app's click command tree as a plain CommandSpec (hidden options left out)."""
    from aigw.services.completions import CommandSpec, OptionSpec

    options = []
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        descriptor = getattr(param, "type_descriptor", None)
        choices: tuple[Any, ...] = ()
        if descriptor is not None and descriptor.is_choice:
            choices = tuple(descriptor.choices or ())
        options.append(
            OptionSpec(
                flags=tuple(param.opts) + tuple(param.secondary_opts),
                help=param.help or "",
                choices=tuple(str(getattr(c, "value", c)) for c in choices),
                takes_value=not param.is_flag,
            )
        )
    options.append(OptionSpec(flags=("--help",), help="Show help and exit."))
    children = []
    for child_name, child in sorted(getattr(command, "commands", {}).items()):
        if not getattr(child, "hidden", False):
            children.append(command_tree(child, child_name))
    return CommandSpec(name=name, help=command.help or "", options=options, children=children)


def _check_shell(shell: str) -> str:
    from aigw.errors import UsageError
    from aigw.services.completions import SHELLS

    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    return shell


def script(shell: str, root: Any) -> str:
    """The completion script for SHELL of the click command `root` (the whole aigw app)."""
    from aigw.services.completions import GENERATORS

    return GENERATORS[_check_shell(shell)](command_tree(root))


@app.command("show", epilog=examples("aigw completions show bash > completions/aigw.bash"))
def show(ctx: typer.Context, shell: str = ShellArgument) -> None:
    """Print the completion script for SHELL."""
    typer.echo(script(shell, ctx.find_root().command), nl=False)


@app.command("install", epilog=examples("aigw completions install zsh"))
def install(
    ctx: typer.Context,
    shell: str = ShellArgument,
    path: Path | None = typer.Option(None, "--path", help="Write here instead."),
) -> None:
    """Write the script where SHELL finds user completions."""
    from aigw.services.completions import install_path

    target = path or install_path(_check_shell(shell))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(script(shell, ctx.find_root().command), encoding="utf-8")
    Output().success(f"installed {shell} completions in {target}")
    if shell == "zsh" and path is None:
        Output().note("add to ~/.zshrc: fpath=(~/.zfunc $fpath); autoload -Uz compinit; compinit")
