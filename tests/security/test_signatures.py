"""Requests Slack did not send, or sent once: what tests/app/test_http.py leaves out — a signature lifted
from another request, timestamps that are not numbers, the edges of the five-minute window, and a
byte-identical replay of a valid request inside it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_world import MIGRATION, PEOPLE, GuardedWorld, guarded_world

from sandbox.slack import SlackRequest
from sandbox.slack.signing import signature

TIMESTAMP, SIGNATURE = "X-Slack-Request-Timestamp", "X-Slack-Signature"


def _database(g: GuardedWorld) -> tuple[object, ...]:
    repos = g.world.bot.repositories
    return (
        tuple(e.hash for e in repos.audit.events()),
        tuple((w.state, w.version) for w in repos.migrations.waves("replay")),
        tuple(repos.approvals.approvals(g.wave("replay").id)),
    )


def _with_headers(request: SlackRequest, **headers: str) -> SlackRequest:
    return replace(request, headers={**request.headers, **headers})


def test_a_signature_lifted_from_another_genuine_request_is_refused(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["replay"]) as g:
        world, people = g.world, g.world.people
        ts = g.requested("replay")
        before = _database(g)
        # Two genuine requests of the same second: the signature of one does not carry the other.
        status = people["carol"].build_command("/migrate", "status --cluster replay", channel=MIGRATION)
        click = people["carol"].build_click(channel=MIGRATION, ts=ts, action_id="wave_request.approve")
        lifted = _with_headers(click, **{k: status.headers[k] for k in (TIMESTAMP, SIGNATURE)})
        assert people.send(lifted).status == 401
        ask = people["alice"].build_command("/migrate", "abort --cluster replay", channel=MIGRATION)
        assert (
            people.send(_with_headers(ask, **{k: click.headers[k] for k in (TIMESTAMP, SIGNATURE)})).status
            == 401
        )
        world.settle()
        assert _database(g) == before
        assert world.ephemerals("carol") == [] and world.ephemerals("alice") == []
        assert g.wave("replay").state.value == "requested"


def test_timestamps_that_are_not_numbers_get_401_never_a_crash(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["replay"]) as g:
        world, people = g.world, g.world.people
        ts = g.requested("replay")
        genuine = {
            "command": people["alice"].build_command("/migrate", "abort --cluster replay", channel=MIGRATION),
            "click": people["carol"].build_click(channel=MIGRATION, ts=ts, action_id="wave_request.approve"),
            "event": people["erin"].build_home_opened(),
        }
        before = _database(g)
        printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)

        @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.sampled_from(sorted(genuine)), printable.filter(lambda t: not _is_int(t)))
        def sending(kind: str, stamp: str) -> None:
            request = genuine[kind]
            # Signed with the real secret over the bad timestamp: the signature itself is right.
            resigned = _with_headers(request, **{TIMESTAMP: stamp, SIGNATURE: _sign(request, stamp)})
            delivery = people.send(resigned)
            assert delivery.status == 401, (kind, stamp, delivery.status, delivery.text)

        sending()
        world.settle()
        assert _database(g) == before
        assert "Traceback" not in g.log.getvalue(), g.log.getvalue()
        # The genuine requests were never used up: they act now.
        assert people.send(genuine["click"].resigned()).status == 200
        world.settle()
        assert g.wave("replay").state.value == "approved"


def test_the_replay_window_is_five_minutes_back_and_forth(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["replay"]) as g:
        world, people = g.world, g.world.people
        now = int(time.time())
        ask = people["alice"].build_command("/migrate", "next-wave --cluster replay", channel=MIGRATION)
        assert people.send(ask.resigned(timestamp=now + 5 * 60 + 30)).status == 401
        assert people.send(ask.resigned(timestamp=now - 5 * 60 - 30)).status == 401
        world.settle()
        assert g.wave("replay").state.value == "planned"
        # Four and a half minutes late (Slack retries and slow networks) is still Slack's request.
        assert people.send(ask.resigned(timestamp=now - 4 * 60 - 30)).status == 200
        assert "Requested wave 1" in world.wait_for_ephemeral("alice")[-1]
        assert g.wave("replay").state.value == "requested"


def test_a_byte_identical_replay_of_a_valid_request_acts_once(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["replay"]) as g:
        world, people = g.world, g.world.people
        ask = people["alice"].build_command("/migrate", "next-wave --cluster replay", channel=MIGRATION)
        assert [people.send(ask).status for _ in range(3)] == [200, 200, 200]
        world.wait_for_ephemeral("alice")
        world.settle()
        assert len(world.ephemerals("alice")) == 1
        assert len(world.bot.repositories.audit.events(action="wave.request")) == 1

        ts = next(m["ts"] for m in world.history() if m.get("blocks"))
        click = people["carol"].build_click(channel=MIGRATION, ts=ts, action_id="wave_request.approve")
        assert [people.send(click).status for _ in range(3)] == [200, 200, 200]
        world.wait_for_ephemeral("carol")
        world.settle()
        assert len(world.ephemerals("carol")) == 1
        assert g.wave("replay").state.value == "approved"
        assert [a.user_id for a in world.bot.repositories.approvals.approvals(g.wave("replay").id)] == [
            PEOPLE["carol"]
        ]
        assert len(world.bot.repositories.audit.events(action="wave.approve")) == 1


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _sign(request: SlackRequest, stamp: str) -> str:
    return signature(request.secret, stamp, request.body)
