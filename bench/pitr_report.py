"""The point-in-time recovery rows of the benchmark's report: one table, each row with its
command, the baseline's command and the ratio."""

from __future__ import annotations

from statistics import median

from bench.pitr import (
    AGENT_BASE,
    AGENT_BASE_AGE,
    AGENT_REPLAY,
    BARMAN_CLOUD_QUOTED,
    CP_REPLAY,
    PG_BASEBACKUP,
    PitrBench,
)


def pitr_report(pitr: PitrBench) -> list[str]:
    facts, wall = pitr.facts, pitr.bench.results
    lines = ["", f"Point-in-time recovery: WAL backlog {facts.segments} files "
             f"({facts.backlog_bytes / 2**20:.0f} MiB); base backups of a cluster of "
             f"{pitr.cluster_bytes / 2**20:.0f} MiB, before the backlog; {pitr.repeat} "
             "base-backup round(s), one of each other row.",
             "", "| Measurement | command | measured | baseline (command) | baseline "
             "| ratio | target |", "|---|---|---:|---|---:|---:|---|"]
    rate = facts.segments / facts.drain["agent wal stream"]
    for name, seconds in facts.drain.items():
        if name != "agent wal stream":
            other = facts.segments / seconds
            lines.append(f"| WAL backlog drain (segments/s) | `backup-agent wal stream` "
                         f"(gzip, age, signed, create-only) | {rate:.1f} | {name} | "
                         f"{other:.1f} | {rate / other:.2f} | higher is better |")
    lines.append(f"| WAL backlog drain (segments/s) | `backup-agent wal stream` | "
                 f"{rate:.1f} | barman-cloud plugin (quoted in issue 22, not measured) | "
                 f"~{BARMAN_CLOUD_QUOTED:.0f} | {rate / BARMAN_CLOUD_QUOTED:.1f} | > 2 |")
    if facts.lags:
        limit = pitr.max_delay_seconds
        middle, peak = median(facts.lags), max(facts.lags)
        lines.append(f"| lag under load (s), median / max of {len(facts.lags)} samples"
                     f"{f', {facts.failed_samples} failed' if facts.failed_samples else ''}"
                     f" | `backup-agent status --json` every 1 s during `pgbench -c 2 "
                     f"-j 2 -T {facts.load_seconds}` ({facts.tps:.0f} tps, "
                     f"{facts.load_wal_bytes / 2**20 / facts.load_seconds:.1f} MiB/s WAL)"
                     f" | {middle:.1f} / {peak:.1f} | WAL_MAX_DELAY | "
                     f"{limit:.0f} | {peak / limit:.2f} | max <= 60 s (alarm at 180) |")
    for name in (AGENT_BASE, AGENT_BASE_AGE):
        ours, theirs = median(wall[name].wall), median(wall[PG_BASEBACKUP].wall)
        lines.append(f"| base backup (s) | {name} | {ours:.2f} | {PG_BASEBACKUP} | "
                     f"{theirs:.2f} | {ours / theirs:.2f} | <= 1.0 |")
    ours, theirs = median(wall[AGENT_REPLAY].wall), median(wall[CP_REPLAY].wall)
    lines.append(f"| replay of the whole archive (s) | {AGENT_REPLAY} | {ours:.2f} | "
                 f"{CP_REPLAY} | {theirs:.2f} | {ours / theirs:.2f} | <= 1.5 |")
    lines.append(f"\nwal stream's own CPU while draining: {facts.drain_cpu:.2f} s.")
    return lines
