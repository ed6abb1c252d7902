"""Help that reads well: flags without a `<bool>` type, paragraphs the terminal wraps, and every
environment setting named (`backup-agent config` shows each with its value and meaning)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from typer.core import TyperCommand, TyperGroup

from backup_agent.model.errors import ExitCode
from backup_agent.model.variables import VARIABLES


def rewrapped(text: str | None) -> str | None:
    """Join the lines of each paragraph: the terminal wraps them, never a newline mid-sentence."""
    if text is None:
        return None
    return "\n\n".join(" ".join(paragraph.split("\n"))
                       for paragraph in inspect.cleandoc(text).split("\n\n"))


def _without_flag_types(parameters: list[Any]) -> list[Any]:
    """Flags show no type: `--dry-run`, not `--dry-run <bool>` (typer shows a metavar instead)."""
    for parameter in parameters:
        if getattr(parameter, "is_flag", False) and parameter.metavar is None:
            parameter.metavar = ""
    return parameters


class TidyCommand(TyperCommand):
    """A command whose help paragraphs are rewrapped and whose flags show no type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = rewrapped(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """A usage error with --json also prints the JSON envelope (exit 2) on stdout."""
        with self._usage_errors_as_json(wants_json="--json" in args):
            result: list[str] = super().parse_args(ctx, args)
        return result

    def invoke(self, ctx: Any) -> Any:
        # typer converts some values (enums) only now: a bad one is a usage error too.
        with self._usage_errors_as_json(wants_json=ctx.params.get("as_json") is True):
            return super().invoke(ctx)

    @contextmanager
    def _usage_errors_as_json(self, *, wants_json: bool) -> Iterator[None]:
        try:
            yield
        except Exception as error:  # typer's own (vendored) click.UsageError, BadParameter
            if wants_json and hasattr(error, "format_message"):
                from backup_agent.cli.boundary import emit_json
                from backup_agent.cli.render import envelope

                emit_json(envelope(self.name or "backup-agent", warnings=[], data={},
                                   exit_code=ExitCode.USAGE,
                                   error=f"{error.format_message().rstrip('.')}: see `backup-agent "
                                         f"{self.name} --help`"))
            raise


class TidyHelpGroup(TyperGroup):
    """The app's group, tidied the same way (its commands use TidyCommand)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = rewrapped(self.help)
        self.epilog = rewrapped(self.epilog)

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


ENVIRONMENT_HELP = (
    "Environment (a flag wins, then the environment, then --env-file, then the default): "
    + ", ".join(variable.name for variable in VARIABLES)
    + ". `backup-agent config` prints each one's value, source and meaning (secrets masked).")
