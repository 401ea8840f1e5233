"""What the Slack side keeps in the database: deliveries, its messages, approvals per request cycle."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from bot_world import MIGRATION, World, eventually

from bot.app import build_bot
from bot.demo import BotServer
from bot.domain.waves import Trigger
from sandbox.slack import send
from storage.db import Database
from storage.errors import AlreadyDecided
from storage.models import Base
from storage.repositories import ApprovalDecision, MessageKind, Repositories
from storage.schema import alembic_config, current_revision, upgrade

MINE = {"slack_deliveries", "slack_messages", "approvals"}


def test_the_slack_tables_match_their_models_after_upgrade_and_survive_a_downgrade_and_upgrade(
    database_url: str,
) -> None:
    upgrade(database_url)
    with Database(database_url) as database, database.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    assert current_revision(database_url) == "0003"
    upgrade(database_url)
    assert current_revision(database_url) == "0004"
    with Database(database_url) as database, database.engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = [d for d in diffs if MINE & set(_tables(d))]
    assert mine == []


def _tables(diff: object) -> list[str]:
    found = []
    for part in diff if isinstance(diff, (list, tuple)) else [diff]:
        for item in part if isinstance(part, (list, tuple)) else [part]:
            name = getattr(item, "name", None)
            table = getattr(item, "table", None)
            if table is not None:
                found.append(str(table.name))
            elif isinstance(name, str):
                found.append(name)
            elif isinstance(item, str):
                found.append(item)
    return found


def _wave(repos: Repositories) -> int:
    repos.migrations.register_plan("prod", "a" * 64, [(1, "web")], actor="test")
    return repos.migrations.waves("prod")[0].id


def test_a_delivery_is_claimed_once_however_many_times_it_arrives(database: Database) -> None:
    slack = Repositories.over(database).slack
    assert slack.claim_delivery("Ev0001")
    assert not slack.claim_delivery("Ev0001")
    assert slack.claim_delivery("Ev0002")
    assert slack.forget_deliveries(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 2
    assert slack.claim_delivery("Ev0001")


def test_only_one_replica_posts_a_message_and_a_dead_claimers_post_is_taken_over(database: Database) -> None:
    now = [dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)]
    replica_a = Repositories.over(database, clock=lambda: now[0]).slack
    replica_b = Repositories.over(database, clock=lambda: now[0]).slack
    ttl = dt.timedelta(minutes=2)
    assert replica_a.claim_post(7, 0, ttl=ttl)
    assert not replica_b.claim_post(7, 0, ttl=ttl)  # a is posting it (or waiting out a 429)
    assert replica_b.claim_post(7, 1, ttl=ttl)  # a's attempt failed and was recorded: the next one is free
    now[0] += dt.timedelta(minutes=3)  # a died without recording anything
    assert replica_b.claim_post(7, 0, ttl=ttl)
    assert not replica_a.claim_post(7, 0, ttl=ttl)


def test_a_wave_requested_again_collects_fresh_approvals_and_keeps_one_decision_per_person_per_request(
    database: Database,
) -> None:
    repos = Repositories.over(database)
    wave_id = _wave(repos)
    first = repos.migrations.transition(wave_id, Trigger.REQUEST, actor="U0SRE", expected_version=1)
    repos.approvals.record_approval(
        wave_id, user_id="U0LEAD", decision=ApprovalDecision.DENY, plan_hash="a" * 64, cycle=first.version
    )
    with pytest.raises(AlreadyDecided):
        repos.approvals.record_approval(
            wave_id,
            user_id="U0LEAD",
            decision=ApprovalDecision.APPROVE,
            plan_hash="a" * 64,
            cycle=first.version,
        )
    denied = repos.migrations.transition(
        wave_id, Trigger.DENY, actor="U0LEAD", expected_version=first.version
    )
    replanned = repos.migrations.transition(
        wave_id, Trigger.REPLAN, actor="U0SRE", expected_version=denied.version
    )
    second = repos.migrations.transition(
        wave_id, Trigger.REQUEST, actor="U0SRE", expected_version=replanned.version
    )
    approved = repos.approvals.record_approval(
        wave_id, user_id="U0LEAD", decision=ApprovalDecision.APPROVE, plan_hash="a" * 64, cycle=second.version
    )
    assert approved.decision is ApprovalDecision.APPROVE
    assert [a.decision for a in repos.approvals.approvals(wave_id, cycle=second.version)] == [
        ApprovalDecision.APPROVE
    ]
    assert len(repos.approvals.approvals(wave_id)) == 2


def test_a_message_wanted_but_not_delivered_stays_pending_until_slack_shows_its_latest_revision(
    database: Database,
) -> None:
    slack = Repositories.over(database).slack
    wave_id = _wave(Repositories.over(database))
    slack.record_posted(wave_id, 2, MessageKind.REQUEST, channel="C1", ts="100.1")
    wanted = slack.want(
        wave_id,
        2,
        MessageKind.PROGRESS,
        channel="C1",
        thread_ts="100.1",
        text="1/4",
        blocks=[],
        facts={"n": 1},
    )
    assert wanted.pending and wanted.ts is None
    same = slack.want(
        wave_id, 2, MessageKind.PROGRESS, channel="C1", thread_ts="100.1", text="1/4", blocks=[]
    )
    assert same.rev == wanted.rev  # unchanged content is not a new revision
    newer = slack.want(
        wave_id, 2, MessageKind.PROGRESS, channel="C1", thread_ts="100.1", text="2/4", blocks=[]
    )
    slack.delivered(wanted.id, wanted.rev, ts="100.2")
    [pending] = slack.undelivered()
    assert pending.text == "2/4" and pending.ts == "100.2"
    slack.delivered(newer.id, newer.rev, ts="100.2")
    assert slack.undelivered() == []
    assert slack.latest(wave_id, MessageKind.REQUEST) is not None
    last = slack.latest_facts("prod")
    assert last is not None and last.text == "2/4"


def test_a_redelivery_reaching_a_restarted_bot_is_dropped_because_the_database_remembers_it(
    world: World,
) -> None:
    ask = world.people["alice"].build_command("/migrate", "next-wave", channel=MIGRATION)
    assert world.people.send(ask).status == 200
    world.wait_for_ephemeral("alice")
    world.settle()
    assert ask.interaction is not None and ask.interaction.trigger_id
    key = ask.interaction.trigger_id
    eventually(lambda: world.bot.repositories.slack.delivery_claimed(key))  # claimed after the ack

    # Another process (a restart, a second replica) with nothing in memory gets Slack's retry.
    restarted = build_bot(world.bot.settings)
    with BotServer(restarted) as server:
        retry = dataclasses.replace(ask.redelivered(1, "http_timeout"), url=f"{server.base}/slack/events")
        assert send(retry).status == 200
        eventually(lambda: restarted.metrics.value("migratebot_redeliveries_dropped_total") == 1)
        eventually(lambda: restarted.background.pending == 0)
    assert len(world.ephemerals("alice")) == 1
    assert len(world.requests()) == 1
