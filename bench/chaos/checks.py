"""What a scenario left behind, read from the ground truth rather than from the bot's own account:

- outcome: every wave completed and its AL2 capacity retired, no AL2 node left, the migration active;
- PodDisruptionBudgets: the sandbox controllers' `pdbViolations` (admin API /ground-truth);
- Slack, as anyone reading the workspace sees it: each wave's request posted once, one progress
  message, one results reply and one channel summary per wave, one alert per alert episode, no
  message posted twice (same text in the same place), no canary result repeated;
- the database: each request, approval and transition recorded once, one canary run per tick;
- `migratebot audit verify` (the console script, as an operator runs it);
- with several replicas: one executor at a time — the mutating Kubernetes requests of the engine,
  by replica (each replica has its own service account), never interleave beyond the executor lock's
  handovers seen in the database.
"""

from __future__ import annotations

import itertools
import math
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from bench.chaos.replica import MIGRATEBOT
from bench.chaos.world import World, base_environment
from bot.domain.waves import WaveState
from bot.engine.inventory import Inventory
from bot.engine.pods import OsFamily
from sandbox.slack.workspace import Message

MUTATING = {"create", "update", "patch", "delete", "deletecollection"}
# Not the engine's work: leader election, events, access reviews.
NOT_ENGINE = {"leases", "events", "selfsubjectaccessreviews", "subjectaccessreviews", "tokenreviews"}


@dataclass
class Findings:
    outcome: str = "?"
    completed: int = 0
    al2_left: int | None = None
    pdb_violations: int | None = None
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    audit: str = "?"
    audit_ok: bool = False
    exclusivity: str = "n/a"
    exclusive_ok: bool = True
    notes: list[str] = field(default_factory=list)


def check(world: World, lock_timeline: Sequence[tuple[float, str | None]] = ()) -> Findings:
    found = Findings()
    _outcome(world, found)
    truth = world.sandbox_admin("GET", "/ground-truth")
    violations = truth.get("pdbViolations")
    found.pdb_violations = None if violations is None else len(violations)
    if violations:
        found.notes.append(f"PDB violations: {violations[:3]}")
    _slack(world, found)
    _database(world, found)
    _pagerduty(world, found)
    _audit(world, found)
    if len(world.replicas) > 1:
        _exclusivity(world, lock_timeline, found)
    return found


def _outcome(world: World, found: Findings) -> None:
    waves = world.repos.migrations.waves(world.cluster)
    retired = {
        w.id for w in waves if any(s.key == "retire" and s.done for s in world.repos.journal.journal(w.id))
    }
    found.completed = sum(1 for w in waves if w.state is WaveState.COMPLETED and w.id in retired)
    found.al2_left = len(Inventory.build(world.admin).nodes_of(OsFamily.AL2))
    migration = world.repos.migrations.get(world.cluster)
    status = migration.status.value if migration else "missing"
    states = ", ".join(f"{w.index}:{w.state.value}" for w in waves)
    if found.completed == len(waves) and found.al2_left == 0 and status == "active":
        found.outcome = f"completed {found.completed}/{len(waves)}"
    else:
        found.outcome = f"NOT completed ({states}; migration {status}; {found.al2_left} AL2 nodes left)"


def _bot_messages(world: World, channel: str) -> list[Message]:
    ws = world.slack.workspace
    with ws.lock:
        cid = ws.channel(channel).id
        return sorted((m for m in ws.messages[cid].values() if m.bot_id), key=lambda m: float(m.ts))


def _slack(world: World, found: Findings) -> None:
    plan_channels = world.repos.migrations  # noqa: F841 (kept for symmetry with the people)
    from bot.plan import load_plan

    plan = load_plan(world.plan_file)
    migration = _bot_messages(world, plan.channels.migration)
    alerts = _bot_messages(world, plan.channels.alerts)
    cluster = world.cluster

    def blob(m: Message) -> str:
        import json

        return m.text + json.dumps(m.blocks or [])

    for wave in world.repos.migrations.waves(cluster):
        label = wave.label
        kinds = {
            "request": [m for m in migration if not m.is_reply and f"approve moving *{label}*" in blob(m)],
            "progress": [m for m in migration if m.is_reply and m.text.startswith(f"{label} of {cluster}: ")],
            "results": [
                m for m in migration if m.is_reply and m.text.startswith(f"{label} of {cluster} finished")
            ],
            "summary": [
                m
                for m in migration
                if not m.is_reply and f"{label} of {cluster}: *" in m.text and "approve moving" not in blob(m)
            ],
            "canary end": [
                m
                for m in migration
                if m.is_reply and f"Canary run on {label}: *" in m.text and "* — successful" in m.text
            ],
        }
        for kind, messages in kinds.items():
            if len(messages) > 1:
                found.duplicates.append(
                    f"{label}: {len(messages)} {kind} messages ({[m.ts for m in messages]})"
                )
            elif not messages:
                found.lost.append(f"{label}: no {kind} message in Slack")
        # Canary results in the thread: a post is made when the verdict changes or the bake ends, so
        # two identical posts in a row are one result posted twice.
        canary = [m.text for m in migration if m.is_reply and f"Canary run on {label}:" in m.text]
        repeats = [a for a, b in itertools.pairwise(canary) if a == b]
        if repeats:
            found.duplicates.append(f"{label}: canary result posted twice in a row: {repeats[0][:80]!r}")

    # One alert per episode; nothing else in the alerts channel looks like a fresh alert.
    episodes = world.repos.canary.episodes()
    recorded = {e.message_ts for e in episodes if e.message_ts}
    for episode in episodes:
        if not episode.message_ts or not any(m.ts == episode.message_ts for m in alerts):
            found.lost.append(f"alert for episode {episode.id} ({episode.kind}) never shown in Slack")
    stray = [m for m in alerts if not m.is_reply and not m.reply_broadcast and m.ts not in recorded]
    if stray:
        found.duplicates.append(
            f"{len(stray)} alert message(s) not the one recorded for their episode: {stray[0].text[:100]!r}"
        )
    for episode in episodes:
        if episode.message_ts:
            resolved = [
                m for m in alerts if m.thread_ts == episode.message_ts and m.is_reply and "Resolved" in m.text
            ]
            if len(resolved) > 1:
                found.duplicates.append(f"episode {episode.id}: {len(resolved)} 'Resolved' replies")

    # Anything posted twice word for word in the same place (canary results are judged above).
    for name, messages in (("#migration", migration), ("#alerts", alerts)):
        counts = Counter(
            (m.thread_ts if m.is_reply else None, m.text) for m in messages if "Canary run on" not in m.text
        )
        for (thread, body), n in counts.items():
            if n > 1:
                where = f"thread {thread}" if thread else "channel"
                found.duplicates.append(f"{name} {where}: posted {n} times: {body[:100]!r}")


def _rows(world: World, sql: str) -> list[Any]:
    with world.db.engine.connect() as connection:
        return list(connection.execute(text(sql)))


def _database(world: World, found: Findings) -> None:
    once = (
        "wave.request",
        "wave.approve",
        "approval.recorded",
        "slack.request_posted",
        "wave.start",
        "wave.complete",
    )
    for subject, action, n in _rows(
        world,
        "SELECT subject, action, count(*) FROM audit_events WHERE action IN ("
        + ", ".join(f"'{a}'" for a in once)
        + ") GROUP BY subject, action",
    ):
        if n > 1:
            found.duplicates.append(f"audit: {action} recorded {n} times for {subject}")
    for wave_id, user, cycle, n in _rows(
        world,
        "SELECT wave_id, user_id, cycle, count(*) FROM approvals "
        "GROUP BY wave_id, user_id, cycle HAVING count(*) > 1",
    ):
        found.duplicates.append(f"approvals: wave {wave_id} cycle {cycle}: {user} recorded {n} times")
    for wave_id, analysis, tick, n in _rows(
        world,
        "SELECT wave_id, analysis, tick, count(*) FROM canary_runs "
        "GROUP BY wave_id, analysis, tick HAVING count(*) > 1",
    ):
        found.duplicates.append(f"canary_runs: wave {wave_id} analysis {analysis} tick {tick} ran {n} times")
    # A bake that passed must have measured as often as an uninterrupted one does (Argo's `count`): a
    # run every `interval` up to the first at or after its end. Fewer means runs were lost (a restart).
    for wave_id, analysis, duration, interval, outcome in _rows(
        world, "SELECT wave_id, analysis, duration_seconds, interval_seconds, outcome FROM canary_bakes"
    ):
        runs = _rows(
            world,
            f"SELECT tick, verdict FROM canary_runs WHERE wave_id = {int(wave_id)} "
            f"AND analysis = {int(analysis)} AND tick NOT LIKE 'manual:%' AND verdict IS NOT NULL "
            "ORDER BY id",
        )
        wanted = max(1, math.ceil(round(duration / interval, 3)))  # one per interval up to the bake's end
        if outcome == "passed" and len(runs) < wanted:
            seen = ", ".join(f"{tick} {verdict}" for tick, verdict in runs) or "none"
            found.lost.append(
                f"wave id {wave_id} analysis {analysis}: the bake passed on {len(runs)} canary run(s) "
                f"({seen}); "
                f"a {duration:.0f} s bake every {interval:.0f} s calls for {wanted}"
            )
    runs = _rows(world, "SELECT count(*), count(DISTINCT runner) FROM canary_runs")[0]
    found.notes.append(f"{runs[0]} canary runs by {runs[1]} runner(s)")
    undelivered = _rows(world, "SELECT kind, last_error FROM slack_messages WHERE delivered_rev < rev")
    for kind, error in undelivered:
        found.lost.append(f"slack_messages: a {kind} message never delivered ({error})")


def _pagerduty(world: World, found: Findings) -> None:
    incidents = world.pagerduty.incidents
    for episode in world.repos.canary.episodes():
        incident = incidents.get(episode.dedup_key)
        if incident is None:
            found.lost.append(f"episode {episode.id} ({episode.kind}) was never paged")
        elif episode.resolved_at is not None and incident.status != "resolved":
            found.notes.append(f"episode {episode.id} resolved but its incident is {incident.status}")
    triggers = Counter(
        e.get("dedup_key") for e in world.pagerduty.events if e.get("event_action") == "trigger"
    )
    found.notes.append(f"{len(incidents)} PagerDuty incident(s), {sum(triggers.values())} trigger event(s)")


def _audit(world: World, found: Findings) -> None:
    env = {
        **base_environment(),
        "MIGRATEBOT_DATABASE_URL": world.database_url,
        "MIGRATEBOT_DATA_DIR": str(world.workdir),
    }
    done = subprocess.run(
        [str(MIGRATEBOT), "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found.audit_ok = done.returncode == 0
    found.audit = (
        (done.stdout.strip() or done.stderr.strip()).splitlines()[-1]
        if (done.stdout or done.stderr)
        else f"exit {done.returncode}"
    )


def _exclusivity(world: World, timeline: Sequence[tuple[float, str | None]], found: Findings) -> None:
    """The engine's mutating requests, by replica, must switch replica no more often than the
    executor lock changed hands, and never while the other replica held it."""
    users = {user: name for name, user in world.service_accounts.items()}
    entries, _ = world.sandbox.kube_server.api.log.since(0)
    acts: list[tuple[float, str]] = []
    for e in entries:
        who = users.get(e.get("impersonatedBy") or "") or users.get(e.get("user") or "")
        if who and e.get("verb") in MUTATING and e.get("resource") not in NOT_ENGINE:
            acts.append((float(e["time"]), who))
    acts.sort()
    segments: list[str] = []
    for _, who in acts:
        if not segments or segments[-1] != who:
            segments.append(who)
    holders: list[str] = []
    for _, holder in timeline:
        name = _replica_name(world, holder)
        if name and (not holders or holders[-1] != name):
            holders.append(name)
    # Mutations by a replica at a moment the samples say the other one held the lock (with a margin of
    # one sampling period either side, the samples being 50 ms apart).
    outside = 0
    for t, who in acts:
        before = [name for ts, h in timeline if ts <= t - 0.1 and (name := _replica_name(world, h))]
        after = [name for ts, h in timeline if ts >= t + 0.1 and (name := _replica_name(world, h))]
        if before and after and before[-1] != who and after[0] != who:
            outside += 1
    it = iter(holders)
    subsequence = all(any(h == s for h in it) for s in segments)
    found.exclusive_ok = subsequence and outside == 0
    found.exclusivity = (
        f"{len(acts)} engine writes in {len(segments)} run(s) {'→'.join(segments)}; "
        f"lock holders {'→'.join(holders)}; {outside} write(s) outside the lock"
    )


def _replica_name(world: World, holder: str | None) -> str | None:
    if not holder:
        return None
    try:
        pid = int(holder.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None
    replica = world.replica_of_pid(pid)
    return replica.name if replica else None
