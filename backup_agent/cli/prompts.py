"""The two questions the agent asks before it changes a database, and the rule for asking.

On a terminal, the question; without one, only --yes goes ahead (a CI job or cron cannot
restore production or drop a rollback copy by accident).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from backup_agent.cli.render import database_age
from backup_agent.model.errors import ConfigurationError

if TYPE_CHECKING:
    from backup_agent.actions.prune import DatabasePlan
    from backup_agent.restoring.plan import RestorePlan


def _no_terminal(what: str) -> ConfigurationError:
    return ConfigurationError(f"{what} and there is no terminal to ask on: pass --yes (or "
                              "--dry-run to see the plan)")


def require_a_way_to_confirm(*, yes: bool) -> None:
    """Refuse up front what confirm_restore would refuse only after the download."""
    if not yes and not sys.stdin.isatty():
        raise _no_terminal("restore changes a database")


def confirm_restore(plan: RestorePlan, *, yes: bool) -> bool:
    """Ask on a terminal; without one, only --yes may restore."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise _no_terminal("restore changes a database")
    what = (f"replace database {plan.target} (kept as {plan.previous})" if plan.swap
            else f"create database {plan.target}")
    return typer.confirm(f"Restore {plan.source.location} and {what}?", default=False)


def confirm_prune(plan: DatabasePlan, *, yes: bool) -> bool:
    """Show the databases `prune --databases` would drop, then ask (or need --yes)."""
    if yes:
        return True
    names = ", ".join(leftover.name for leftover in plan.drop)
    if not sys.stdin.isatty():
        raise _no_terminal(f"prune would drop {len(plan.drop)} database(s) ({names})")
    lines = [f"prune would drop {len(plan.drop)} database(s):",
             *(f"  {leftover.name} ({database_age(leftover, plan.now)} old)"
               for leftover in plan.drop)]
    if plan.young:
        lines.append(f"and leave {len(plan.young)} younger than {plan.min_age_text}: "
                     + ", ".join(leftover.name for leftover in plan.young))
    typer.echo("\n".join(lines), err=True)
    return typer.confirm(f"Drop {len(plan.drop)} database(s)?", default=False, err=True)
