"""Clicks that are not what migratebot posted: a real button's payload, correctly signed, with its value,
action_id, user, channel or message changed to anything. migratebot answers 200 with a refusal (or
404 for an action it never registered), never 500; the waves, approvals, alerts and migrations stay
as they were; the only audit events are refusals; nothing is logged with a traceback.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_world import ALERTS, MIGRATION, PEOPLE, GuardedWorld, guarded_world

from handlers.replies import INTERNAL_ERROR
from sandbox.slack import SlackRequest

RANDOM = "C0RANDOM01"
REGISTERED = {
    "wave_request.approve",
    "wave_request.deny",
    "alert.acknowledge",
    "alert.resume",
    "alert.rollback",
}
# Who may click which button for real (bot/domain/policy.py, written out): such a click, untampered,
# is a genuine decision and is left out of the fuzzing.
MAY_CLICK = {
    "wave_request.approve": {"carol", "dave"},
    "wave_request.deny": {"carol", "dave"},
    "alert.acknowledge": {"erin", "frank"},
    "alert.resume": {"alice", "bob", "erin", "frank"},
    "alert.rollback": {"carol", "dave"},
}
REFUSALS = {"access.denied", "slack.action_refused"}
# A JSON value of any shape, for fields Slack fills with strings.
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@dataclass(frozen=True)
class Button:
    action_id: str
    channel: str
    ts: str
    value: str


@dataclass(frozen=True)
class Tamper:
    """What a forged click changes (None: as Slack sent it)."""

    button: Button
    clicker: str  # whose genuine click it starts from (where the answer goes)
    value: Any = None
    action_id: Any = None
    user: Any = None
    channel: Any = None
    container_channel: Any = None
    message_ts: Any = None

    def apply(self, payload: dict[str, Any], serial: int) -> None:
        action, container = payload["actions"][0], payload["container"]
        if self.value is not None:
            action["value"] = self.value
        if self.action_id is not None:
            action["action_id"] = self.action_id
        if self.user is not None:
            payload["user"] = {**payload["user"], "id": self.user}
        if self.channel is not None:
            payload["channel"] = {**payload["channel"], "id": self.channel}
        if self.container_channel is not None:
            container["channel_id"] = self.container_channel
        if self.message_ts is not None:
            container["message_ts"] = self.message_ts
        # A new delivery each time: a replayed trigger_id is dropped before any check.
        payload["trigger_id"] = f"{payload['trigger_id']}.f{serial}"

    def genuine(self, payload: dict[str, Any], buttons: list[Button]) -> bool:
        """The payload is exactly some button's click by someone allowed to make it."""
        action, container = payload["actions"][0], payload["container"]
        user = payload["user"].get("id")
        name = next((n for n, uid in PEOPLE.items() if uid == user), None)
        return any(
            (action.get("action_id"), action.get("value"), payload["channel"].get("id"))
            == (b.action_id, b.value, b.channel)
            and container.get("channel_id") in (None, b.channel)
            and container.get("message_ts") == b.ts
            and name in MAY_CLICK[b.action_id]
            for b in buttons
        )


def _near(buttons: list[Button]) -> st.SearchStrategy[Any]:
    """Values next to the real ones: other waves, versions, episodes, decorations."""
    real = sorted({b.value for b in buttons})
    return st.sampled_from(
        [
            *real,
            "w1.v1",
            "w1.v3",
            "w2.v2",
            "w0.v2",
            "w01.v2",
            "w1.v2;approve=all",
            " w1.v2",
            "W1.V2",
            "w999999999999.v2",
            "w1.v99999999999999",
            "e0",
            "e2",
            "e01",
            "E1",
            "e1 ",
            "e9999999999999",
            "",
        ]
    )


@st.composite
def tampering(draw: st.DrawFn, buttons: list[Button]) -> Tamper:
    button = draw(st.sampled_from(buttons))
    some = st.text(max_size=30)
    channels = st.sampled_from([MIGRATION, ALERTS, RANDOM, "D0PRIVATE01", ""]) | some
    return Tamper(
        button=button,
        clicker=draw(st.sampled_from(sorted(PEOPLE))),
        value=draw(st.none() | _near(buttons) | ANY_JSON),
        action_id=draw(
            st.none() | st.sampled_from(sorted(REGISTERED)) | st.text(max_size=30) | st.integers()
        ),
        user=draw(st.none() | st.sampled_from(sorted(PEOPLE.values())) | some | st.integers()),
        channel=draw(st.none() | channels),
        container_channel=draw(st.none() | channels),
        message_ts=draw(st.none() | st.sampled_from([b.ts for b in buttons]) | some | st.floats(0, 2e9)),
    )


def _resign(request: SlackRequest, payload: dict[str, Any]) -> SlackRequest:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return SlackRequest.signed(
        request.url, body, request.content_type, request.secret, interaction=request.interaction
    )


def _payload(request: SlackRequest) -> dict[str, Any]:
    form = urllib.parse.parse_qs(request.body.decode())
    payload: dict[str, Any] = json.loads(form["payload"][0])
    return payload


def _everything(g: GuardedWorld, clusters: list[str], episode: int) -> tuple[object, ...]:
    repos = g.world.bot.repositories
    waves = [g.wave(c) for c in clusters]
    seen = g.episode(episode)
    return (
        [(w.state, w.version) for w in waves],
        [len(repos.approvals.approvals(w.id)) for w in waves],
        [m.status for c in clusters if (m := repos.migrations.get(c)) is not None],
        (seen.acknowledged_by, seen.resolved_at, seen.channel, seen.message_ts),
    )


def test_tampered_clicks_are_refused_and_change_nothing(tmp_path: Path) -> None:
    clusters = ["requested", "alerted"]
    with guarded_world(tmp_path, clusters) as g:
        world = g.world
        request_ts = g.requested("requested")
        alert = g.alerted("alerted")
        ref = f"w{g.wave('requested').id}.v{g.wave('requested').version}"
        buttons = [
            Button("wave_request.approve", MIGRATION, request_ts, ref),
            Button("wave_request.deny", MIGRATION, request_ts, ref),
            *(
                Button(a, ALERTS, alert.ts, f"e{alert.episode}")
                for a in sorted(REGISTERED)
                if a.startswith("alert")
            ),
        ]
        before = _everything(g, clusters, alert.episode)
        serial = iter(range(1_000_000))

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(tampering(buttons))
        def clicking(tamper: Tamper) -> None:
            button, clicker = tamper.button, tamper.clicker
            genuine = world.people[clicker].build_click(
                channel=button.channel, ts=button.ts, action_id=button.action_id
            )
            payload = _payload(genuine)
            tamper.apply(payload, next(serial))
            if tamper.genuine(payload, buttons):
                return  # a real decision, not a forgery
            answered = len(world.ephemerals(clicker, button.channel))
            audited = len(g.audit())
            delivery = world.people.send(_resign(genuine, payload))
            registered = payload["actions"][0]["action_id"] in REGISTERED
            assert delivery.status == (200 if registered else 404), (tamper, delivery.status, delivery.text)
            world.settle()
            answers = world.ephemerals(clicker, button.channel)[answered:]
            if registered:
                [answer] = answers
                assert answer.startswith((":no_entry:", ":warning:")), (tamper, answer)
                assert answer != INTERNAL_ERROR
            else:
                assert answers == []
            assert _everything(g, clusters, alert.episode) == before, tamper
            added = g.audit()[audited:]
            assert {action for _, action, _ in added} <= REFUSALS, (tamper, added)

        clicking()
        assert "Traceback" not in g.log.getvalue(), g.log.getvalue()
        verification = world.bot.repositories.audit.verify()
        assert verification.ok, verification.reason
        # The genuine buttons still work after all that.
        world.people["carol"].click(channel=MIGRATION, ts=request_ts, action_id="wave_request.approve")
        world.people["erin"].click(channel=ALERTS, ts=alert.ts, action_id="alert.acknowledge")
        world.settle()
        assert g.wave("requested").state.value == "approved"
        assert g.episode(alert.episode).acknowledged_by == PEOPLE["erin"]


def test_a_button_value_pointing_elsewhere_is_refused_naming_why(tmp_path: Path) -> None:
    """A team lead / on-call clicks a real button whose value was edited to another wave, another
    version of this one, another alert or nothing migratebot made: refused, nothing changes."""
    clusters = ["one", "two", "alert-a", "alert-b"]
    with guarded_world(tmp_path, clusters) as g:
        world = g.world
        one_ts, _ = g.requested("one"), g.requested("two")
        one, two = g.wave("one"), g.wave("two")
        a, b = g.alerted("alert-a"), g.alerted("alert-b")
        before = _everything(g, clusters, a.episode), _everything(g, clusters, b.episode)
        cases = [
            (
                "carol",
                MIGRATION,
                one_ts,
                "wave_request.approve",
                f"w{two.id}.v{two.version}",
                "doesn't belong to the request for wave 1 (two-wave)",
            ),
            (
                "carol",
                MIGRATION,
                one_ts,
                "wave_request.approve",
                f"w{one.id}.v{one.version - 1}",
                "doesn't belong to the request for wave 1 (one-wave)",
            ),
            (
                "dave",
                MIGRATION,
                one_ts,
                "wave_request.deny",
                f"w{one.id}.v{one.version + 1}",
                "doesn't belong to the request for wave 1 (one-wave)",
            ),
            (
                "carol",
                MIGRATION,
                one_ts,
                "wave_request.approve",
                "w999.v2",
                "doesn't belong to a request migratebot posted",
            ),
            (
                "dave",
                MIGRATION,
                one_ts,
                "wave_request.approve",
                f"w{one.id}.v{one.version};approve=all",
                "doesn't belong to a request migratebot posted",
            ),
            (
                "erin",
                ALERTS,
                a.ts,
                "alert.acknowledge",
                f"e{b.episode}",
                "does not come from the alert migratebot posted",
            ),
            (
                "carol",
                ALERTS,
                a.ts,
                "alert.rollback",
                f"e{b.episode}",
                "does not come from the alert migratebot posted",
            ),
            ("erin", ALERTS, a.ts, "alert.resume", "e999", "no alert episode 999"),
            (
                "erin",
                ALERTS,
                a.ts,
                "alert.acknowledge",
                f"w{one.id}.v{one.version}",
                "not one migratebot made",
            ),
        ]
        for serial, (name, channel, ts, action_id, value, why) in enumerate(cases):
            click = world.people[name].build_click(channel=channel, ts=ts, action_id=action_id)
            payload = _payload(click)
            Tamper(Button(action_id, channel, ts, value), name, value=value).apply(payload, serial)
            answered = len(world.ephemerals(name, channel))
            assert world.people.send(_resign(click, payload)).status == 200
            world.settle()
            [answer] = world.ephemerals(name, channel)[answered:]
            assert answer.startswith((":no_entry:", ":warning:")) and why in answer, (value, answer)
            assert (_everything(g, clusters, a.episode), _everything(g, clusters, b.episode)) == before, value
        assert "Traceback" not in g.log.getvalue(), g.log.getvalue()
