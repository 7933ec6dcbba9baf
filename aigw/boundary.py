"""The error boundary: every failure becomes one line on stderr and a documented exit code."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from aigw.errors import AigwError, ExitCode, Terminated
from aigw.render import Output


def _validation_message(exc: Exception) -> str:
    errors = exc.errors()  # type: ignore[attr-defined]
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "input"
    return f"invalid {field}: {first['msg']}"


def _debug(ctx: typer.Context) -> bool:
    """AIGW_DEBUG as the settings read it (environment or .env, any boolean spelling); off when
    the settings themselves cannot be read, so that error is reported as one line."""
    obj = ctx.find_root().obj
    try:
        return bool(obj.settings.debug) if obj is not None else False
    except Exception:
        return False


class ErrorBoundaryGroup(TyperGroup):
    """Maps AigwError, SDK/transport errors and validation errors to exit codes, once."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        # The shell's bytes that were not UTF-8 arrive as lone surrogates (Python's decoding
        # of argv); refused here, once, before any command could trip over them.
        for position, arg in enumerate(args, 1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "backslashreplace").decode("utf-8")
                Output().error(f"argument {position} is not valid UTF-8: {shown[:80]!r}")
                raise Exit(ExitCode.USAGE) from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (Exit, Abort, TyperException):
            raise
        except BrokenPipeError:
            # The reader has what it wanted (`| head -1`): end quietly, as a success, and keep
            # the interpreter's last flush from complaining about the closed pipe.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise Exit(ExitCode.OK) from None
        except KeyboardInterrupt:
            Output().error("interrupted")
            raise Exit(ExitCode.INTERRUPTED) from None
        except Terminated:
            Output().error("terminated")
            raise Exit(ExitCode.TERMINATED) from None
        except Exception as exc:
            if _debug(ctx):
                raise
            error = self._translate(ctx, exc)
            if error is None:
                Output().error(
                    f"unexpected {type(exc).__name__}: {exc}",
                    hint="run again with AIGW_DEBUG=1 for the traceback",
                )
                raise Exit(ExitCode.API_ERROR) from None
            Output().error(error.message, error.hint)
            raise Exit(error.code) from None
        finally:
            obj = ctx.find_root().obj
            if obj is not None:
                from aigw.services.sync import finish_command

                try:
                    for message in finish_command(obj):
                        Output().warn(message)
                except Exception as exc:  # closing must never hide the command's own result
                    if _debug(ctx):
                        raise
                    Output().warn(f"while closing: {exc}")

    @staticmethod
    def _translate(ctx: typer.Context, exc: Exception) -> AigwError | None:
        from pydantic import ValidationError

        if isinstance(exc, AigwError):
            return exc
        if isinstance(exc, ValidationError):
            return AigwError(_validation_message(exc), code=ExitCode.USAGE)
        from aigw.gateway.errors import translate

        obj = ctx.find_root().obj
        settings = obj.__dict__.get("settings") if obj is not None else None
        return translate(exc, settings)
