"""What people ask of a migration from chat: request the next wave, decide on a request, pause,
resume, abort, read status and the audit log.

Every decision is re-checked here against the database and the plan as they are now — never against
what a button or a payload claims. A request is identified by its wave's id and the wave's version
when it was requested (`RequestRef`): any later change to the wave (a decision, an expiry, a fresh
request) moves the version, so an old or copied button can't act on a newer request.

Synchronous (SQLAlchemy underneath): the Slack handlers call these from a worker thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.domain.errors import ConcurrentTransition, DomainError, Forbidden, IllegalTransition
from bot.domain.policy import Actor, authorize
from bot.domain.waves import ACTIVE, Trigger, WaveState
from bot.domain.windows import window_status
from bot.plan import Plan, parse_plan, plan_hash
from bot.plan import Wave as PlanWave
from bot.reports.glance import ReportGlance
from bot.reports.snapshot import ReadinessSnapshot
from bot.services.plans import register_plan
from bot.services.waves import WaveService
from storage.errors import AlreadyDecided, NotFound
from storage.models import MigrationStatus, utc_now
from storage.repositories import (
    ApprovalDecision,
    ApprovalView,
    AuditEventView,
    MessageKind,
    Repositories,
    SlackMessageView,
    WaveView,
)
from storage.repositories.migrations import READINESS_BOUND

SYSTEM = Actor.system()
REQUEST_POSTED = "slack.request_posted"
ACTION_REFUSED = "slack.action_refused"
ACCESS_DENIED = "access.denied"
_DONE = frozenset({WaveState.COMPLETED, WaveState.ROLLED_BACK, WaveState.ABORTED})
_REQUESTABLE = frozenset({WaveState.PLANNED, WaveState.DENIED, WaveState.EXPIRED})
_DRAWN_BY_HANDLERS = frozenset({WaveState.PLANNED, WaveState.REQUESTED, WaveState.EXPIRED})
DRAWN = "drawn_version"  # a request message's facts: the wave version its card was last drawn for


class RequestRefused(DomainError):
    """The ask can't be granted as things are now; the message says why and what to do instead."""


class StaleRequest(RequestRefused):
    """The button belongs to a request that is no longer open (decided, expired or replaced)."""


class ForgedAction(RequestRefused):
    """The action does not match a request migratebot posted (another channel, message or wave)."""


class OutsideChangeWindow(RequestRefused):
    """No change window is open: a wave may be requested only when it could start."""


class RequestOutdated(RequestRefused):
    """What the request was made on has changed: the request has expired, and a fresh one is due.
    `note` says why on the old request's message."""

    note = "This request can no longer be decided; a fresh request follows."
    reason = "outdated"

    def __init__(self, message: str, wave: WaveView) -> None:
        super().__init__(message)
        self.wave = wave


class PlanChangedSinceRequest(RequestOutdated):
    """The plan's hash differs from the one the request was made under."""

    note = "The plan changed after this request, so it can no longer be decided; a fresh request follows."
    reason = "plan_changed"


class ReadinessChangedSinceRequest(RequestOutdated):
    """The wave's readiness, read again for an approval, differs from the one its request showed."""

    note = (
        "The wave's readiness changed after this request, so it can no longer be decided; a fresh "
        "request with the new readiness follows."
    )
    reason = "readiness_changed"


# Reads the wave's readiness as it is now (the cluster and AWS): given to `decide` by callers that
# can read the cluster, so an approval is checked against the readiness its request showed.
Recheck = Callable[[WaveView], ReadinessSnapshot]


# ---- the plan, as the file says now -------------------------------------------------------------


# How long a replica's claim on posting a message holds before another may post it: longer than a
# post waiting out Slack's Retry-After, short enough that a dead replica's message still goes out.
POST_CLAIM_TTL = dt.timedelta(minutes=2)


class PlanSource:
    """The plan file, re-read when its contents change and registered in the database then, so that
    the plan hash a request or an approval is checked against is always the file's current one."""

    def __init__(self, path: Path, repositories: Repositories) -> None:
        self.path = path
        self._repositories = repositories
        self._lock = threading.Lock()
        self._stamp = self._stat()
        text = path.read_bytes()
        self._plan = self._register(text)
        self._digest = hashlib.sha256(text).digest()

    def latest(self) -> Plan:
        """The plan as last read (no I/O): for quick, read-only uses such as role lookups."""
        return self._plan

    def changed(self) -> bool:
        """Whether the file looks different since it was last read (one stat, cheap enough to ask
        on the event loop before resolving someone's roles)."""
        return self._stat() != self._stamp

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> Plan:
        """The plan as the file says now. A file that no longer validates raises PlanInvalid, so
        nothing is requested or approved against a plan nobody can read."""
        stamp = self._stat()
        text = self.path.read_bytes()
        digest = hashlib.sha256(text).digest()
        with self._lock:
            self._stamp = stamp
            if digest != self._digest:
                self._plan = self._register(text)
                self._digest = digest
            return self._plan

    def _register(self, text: bytes) -> Plan:
        plan = parse_plan(text.decode("utf-8", "replace"), str(self.path))
        register_plan(plan, self._repositories.migrations, actor=SYSTEM.id)
        return plan


def only_cluster(plan: Plan, cluster: str | None) -> str:
    """The cluster a command is about: the one named, or the plan's only one."""
    if cluster is not None:
        return plan.cluster(cluster).name
    if len(plan.clusters) == 1:
        return plan.clusters[0].name
    names = ", ".join(c.name for c in plan.clusters)
    raise RequestRefused(f"the plan has several clusters ({names}) — add `--cluster NAME`")


# ---- what a request button carries --------------------------------------------------------------

_REF = re.compile(r"w([1-9][0-9]{0,11})\.v([1-9][0-9]{0,11})")


@dataclass(frozen=True)
class RequestRef:
    """The opaque id on Approve / Deny buttons: the wave's id and its version once requested."""

    wave_id: int
    version: int

    def encode(self) -> str:
        return f"w{self.wave_id}.v{self.version}"

    @classmethod
    def parse(cls, value: object) -> RequestRef | None:
        if not isinstance(value, str):
            return None
        match = _REF.fullmatch(value)
        return cls(int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class RequestCard:
    """Everything a wave request message shows, as it stands now."""

    wave: WaveView
    plan_wave: PlanWave
    ref: RequestRef
    plan_hash: str
    requested_by: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    required: int
    approvals: tuple[ApprovalView, ...] = ()
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    superseded: str | None = None
    # The readiness verdict and security headline once computed for this request (None until then,
    # and always when the bot can't reach the cluster).
    reports: ReportGlance | None = None

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(a.user_id for a in self.approvals if a.decision is ApprovalDecision.APPROVE)

    @property
    def open(self) -> bool:
        return self.wave.state is WaveState.REQUESTED and self.superseded is None


@dataclass(frozen=True)
class ClosedRequest:
    """A request closed without a decision, and where its message is (None when it was never posted)."""

    card: RequestCard
    message: tuple[str, str] | None


@dataclass(frozen=True)
class Decision:
    """What a click did: the card to show now and a sentence for the person who clicked."""

    card: RequestCard
    answer: str


# ---- the use cases ------------------------------------------------------------------------------


class WaveRequests:
    def __init__(
        self,
        plans: PlanSource,
        repositories: Repositories,
        waves: WaveService,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.plans = plans
        self._repos = repositories
        self._waves = waves
        self._clock = clock

    # ---- reading ----------------------------------------------------------------------------

    def status(self, cluster: str | None) -> tuple[str, list[WaveView]]:
        name = only_cluster(self.plans.current(), cluster)
        return name, self._repos.migrations.waves(name)

    def all_waves(self) -> dict[str, list[WaveView]]:
        plan = self.plans.current()
        return {c.name: self._repos.migrations.waves(c.name) for c in plan.clusters}

    def audit_tail(self, limit: int) -> list[AuditEventView]:
        # The repository has no "last N" query yet; the log is small while there is one migration.
        return self._repos.audit.events()[-limit:]

    def claim_deliveries(self, keys: list[str]) -> set[str]:
        """The Slack deliveries (trigger_id / event_id) among `keys` that no process claimed before,
        now claimed: primary-key inserts into slack_deliveries, in one transaction."""
        return self._repos.slack.claim_deliveries(keys)

    def forget_deliveries(self, older_than: dt.timedelta) -> int:
        return self._repos.slack.forget_deliveries(self._clock() - older_than)

    # ---- requesting the next wave -------------------------------------------------------------

    def next_wave(self, actor: Actor, cluster: str | None, *, delivery: str | None = None) -> RequestCard:
        """Request the cluster's next wave as `actor` (an SRE), bound to the current plan hash.

        At most one wave of a migration is requested or active at a time, so of many concurrent
        asks exactly one requests a wave and the others are told which wave is already requested.
        """
        plan = self.plans.current()
        name = only_cluster(plan, cluster)
        waves = self._repos.migrations.waves(name)
        target = self._next(name, waves)
        self._authorize(Trigger.REQUEST, actor, target, name)
        windows = window_status(plan.change_windows, self._clock())
        if not windows.open:
            raise OutsideChangeWindow(
                f"no change window is open now, so {target.label} can't be requested — "
                f"{windows.describe()}; run `/migrate next-wave` then. Nothing was changed"
            )
        digest = plan_hash(plan)
        payload: dict[str, Any] = {"plan_hash": digest, "delivery": delivery}
        try:
            if target.state is not WaveState.PLANNED:
                self._waves.fire(name, target.name, Trigger.REPLAN, actor, payload={"delivery": delivery})
            wave = self._waves.fire(name, target.name, Trigger.REQUEST, actor, payload=payload)
        except (ConcurrentTransition, IllegalTransition) as race:
            # Someone else moved the wave between our read and our write: say what it is now.
            now = self._repos.migrations.wave(target.id)
            if now.state is WaveState.REQUESTED:
                raise RequestRefused(
                    f"{now.label} was just requested by <@{now.requested_by}> — nothing was changed; "
                    "a team lead approves or denies that request"
                ) from race
            raise RequestRefused(f"{race} — nothing was changed") from race
        return self._card(wave, plan, digest)

    def _next(self, cluster: str, waves: list[WaveView]) -> WaveView:
        for wave in waves:
            if wave.state in _DONE:
                continue
            if wave.state is WaveState.REQUESTED:
                raise RequestRefused(
                    f"{wave.label} is already requested by <@{wave.requested_by}> — a team lead approves "
                    "or denies it; nothing was changed"
                )
            if wave.state in ACTIVE:
                raise RequestRefused(
                    f"{wave.label} is {wave.state.value} — the next wave can be requested once it has "
                    "completed; nothing was changed"
                )
            if wave.state is WaveState.FAILED:
                raise RequestRefused(
                    f"{wave.label} failed — a team lead rolls it back (`/migrate rollback {wave.index}`) "
                    "before the next wave; nothing was changed"
                )
            if wave.state in _REQUESTABLE:
                return wave
        raise RequestRefused(f"every wave of cluster {cluster} is done — there is no next wave to request")

    def record_request_message(self, card: RequestCard, *, channel: str, ts: str) -> None:
        """Remember where the request was posted: a click is honoured only on that message (and the
        wave's progress and results are threaded under it)."""
        self._repos.slack.record_posted(
            card.wave.id, card.ref.version, MessageKind.REQUEST, channel=channel, ts=ts
        )
        self._repos.audit.append(
            SYSTEM.id,
            REQUEST_POSTED,
            card.wave.subject,
            {"version": card.ref.version, "channel": channel, "ts": ts},
        )

    def request_message(self, wave: WaveView, version: int) -> tuple[str, str] | None:
        posted = self._repos.slack.message(wave.id, version, MessageKind.REQUEST)
        if posted is not None and posted.ts is not None:
            return posted.channel, posted.ts
        # Requests posted before slack_messages existed (schema 0004) are found in the audit log.
        for event in reversed(self._repos.audit.events(subject=wave.subject, action=REQUEST_POSTED)):
            if event.payload.get("version") == version:
                return str(event.payload.get("channel")), str(event.payload.get("ts"))
        return None

    # ---- deciding on a request ----------------------------------------------------------------

    def decide(
        self,
        actor: Actor,
        ref: RequestRef | None,
        decision: ApprovalDecision,
        *,
        channel: str,
        message_ts: str,
        delivery: str | None = None,
        recheck: Recheck | None = None,
    ) -> Decision:
        """Approve or deny the request `ref` as `actor`, after checking that the click came from the
        request's own message in the migration channel, that the request is still open and bound
        to the current plan, and that `actor` may decide (team lead, not the requester).

        With `recheck`, an approval also reads the wave's readiness again: when it differs from the
        snapshot the request was shown with, the request expires (ReadinessChangedSinceRequest) —
        approvals are bound to what the team lead saw. Denying needs no second look."""
        plan = self.plans.current()
        if ref is None:
            self._refuse_action(actor, "unknown", "the button's value is not a request id", channel)
            raise ForgedAction(
                "this button doesn't belong to a request migratebot posted — nothing was changed"
            )
        try:
            wave = self._repos.migrations.wave(ref.wave_id)
        except NotFound as missing:
            self._refuse_action(actor, f"wave-id:{ref.wave_id}", "no such wave", channel)
            raise ForgedAction(
                "this button doesn't belong to a request migratebot posted — nothing was changed"
            ) from missing
        if channel != plan.channels.migration:
            self._refuse_action(actor, wave.subject, f"clicked in channel {channel}", channel)
            raise ForgedAction(
                f"wave requests are decided in <#{plan.channels.migration}> only — nothing was changed"
            )
        if self.request_message(wave, ref.version) != (channel, message_ts):
            self._refuse_action(actor, wave.subject, "not the request's message", channel)
            raise ForgedAction(
                f"this button doesn't belong to the request for {wave.label} — nothing was changed"
            )
        if wave.version != ref.version or wave.state is not WaveState.REQUESTED:
            raise StaleRequest(self._closed(wave, ref))
        trigger = Trigger.APPROVE if decision is ApprovalDecision.APPROVE else Trigger.DENY
        self._authorize(trigger, actor, wave, wave.cluster, requested_by=wave.requested_by)
        bound = self._bound_plan_hash(wave)
        current = plan_hash(plan)
        requested_at = wave.entered_at(WaveState.REQUESTED) or wave.updated_at
        expires_at = requested_at + plan.approvals.expires_after
        if bound != current:
            reason = f"the plan changed since {wave.label} was requested (plan {bound[:12]} → {current[:12]})"
            expired = self._expire(wave, reason)
            raise PlanChangedSinceRequest(f"{reason} — your decision was not recorded", expired)
        if self._clock() >= expires_at:
            self._expire(wave, f"not decided within {plan.approvals.expires_after}")
            raise StaleRequest(
                f"the request for {wave.label} expired at {expires_at:%H:%M} UTC — your decision was not "
                "recorded; an SRE can request it again with `/migrate next-wave`"
            )
        if decision is ApprovalDecision.APPROVE:
            self._someone_answers_for(wave, plan, actor, ref.version, current)
        snapshot_hash = wave.request_snapshot_hash
        if decision is ApprovalDecision.APPROVE and recheck is not None:
            snapshot_hash = self._recheck_readiness(wave, recheck)
        try:
            self._repos.approvals.record_approval(
                wave.id,
                user_id=actor.id,
                decision=decision,
                plan_hash=current,
                snapshot_hash=snapshot_hash,
                expires_at=expires_at,
                cycle=ref.version,
            )
        except AlreadyDecided as twice:
            raise RequestRefused(str(twice)) from twice
        approvals = self._cycle_approvals(wave, ref.version, current)
        approvers = [a for a in approvals if a.decision is ApprovalDecision.APPROVE]
        if decision is ApprovalDecision.APPROVE and len(approvers) < plan.approvals.required:
            card = self._card(wave, plan, current, approvals=approvals)
            return Decision(
                card,
                f"your approval of {wave.label} is recorded: {len(approvers)} of {plan.approvals.required} "
                "team lead approvals so far",
            )
        payload = {"plan_hash": current, "delivery": delivery, "approvers": [a.user_id for a in approvers]}
        try:
            decided = self._waves.fire(
                wave.cluster, wave.name, trigger, actor, payload=payload, expected_version=ref.version
            )
        except (ConcurrentTransition, IllegalTransition) as race:
            raise StaleRequest(self._closed(self._repos.migrations.wave(wave.id), ref)) from race
        verb = "approved" if trigger is Trigger.APPROVE else "denied"
        card = self._card(
            decided, plan, current, approvals=approvals, decided_by=actor.id, decided_at=self._clock()
        )
        follow = (
            "the engine starts it inside the next change window"
            if trigger is Trigger.APPROVE
            else "an SRE can request it again with `/migrate next-wave`"
        )
        return Decision(card, f"you {verb} {wave.label} — {follow}")

    def _someone_answers_for(self, wave: WaveView, plan: Plan, actor: Actor, cycle: int, digest: str) -> None:
        """With the plan's `impersonation:`, every change to the cluster is made in a person's name
        (the requester's, else an approver's) and the bot has no write rights of its own: the approval
        that lets the wave start needs one of them to have a Kubernetes identity in the plan."""
        mapped = plan.impersonation
        if not mapped:
            return
        approvers = [
            a.user_id
            for a in self._cycle_approvals(wave, cycle, digest)
            if a.decision is ApprovalDecision.APPROVE
        ]
        if len(approvers) + 1 < plan.approvals.required:
            return  # a later approval completes the request; it is checked then
        if any(person in mapped for person in (wave.requested_by, actor.id, *approvers)):
            return
        raise RequestRefused(
            f"{wave.label}'s changes are made in a person's name (the plan's `impersonation:`), and neither "
            f"the requester <@{wave.requested_by}> nor you have a Kubernetes identity there — a team lead "
            "listed under `impersonation:` approves, or add one of you to it in the plan; your approval "
            "was not recorded"
        )

    def _recheck_readiness(self, wave: WaveView, recheck: Recheck) -> str | None:
        """The readiness snapshot an approval is bound to: the request's, confirmed by reading the
        wave again. A request whose reports were never read (the cluster was unreachable, or the
        click came first) binds the approval to what is read now."""
        bound = wave.request_snapshot_hash
        try:
            now = recheck(wave)
        except DomainError as unread:
            if bound is None:
                return None  # neither reading exists: the request showed why, as the approval does
            raise RequestRefused(
                f"{wave.label}'s readiness could not be read again to check it against the request's: "
                f"{unread} — your approval was not recorded; click Approve again once the cluster answers"
            ) from unread
        if bound is not None and now.digest != bound:
            changed = now.changes_since(self._bound_readiness(wave))
            reason = f"{wave.label}'s readiness changed since it was requested ({changed})"
            expired = self._expire(wave, reason)
            raise ReadinessChangedSinceRequest(f"{reason} — your approval was not recorded", expired)
        return now.digest

    def _bound_readiness(self, wave: WaveView) -> dict[str, Any]:
        """The snapshot facts the wave's open request was bound to (from its audit event)."""
        for event in reversed(self._repos.audit.events(subject=wave.subject, action=READINESS_BOUND)):
            if event.payload.get("version") == wave.version:
                return dict(event.payload)
        return {}

    def bind_readiness(self, ref: RequestRef, snapshot: ReadinessSnapshot) -> bool:
        """Keep the readiness request `ref` is shown with; approvals are checked against it. False
        when the request is no longer open or already bound (the first reading stands)."""
        return self._repos.migrations.bind_snapshot(
            ref.wave_id, ref.version, snapshot.digest, actor=SYSTEM.id, payload=snapshot.facts()
        )

    # ---- requests nobody decided in time -----------------------------------------------------

    def expire_overdue(self) -> list[ClosedRequest]:
        """Expire every request older than the plan's approvals.expires_after (Trigger.EXPIRE, guarded
        by the version read, so a decision landing at the same moment wins or loses cleanly) and say
        where each request message is, so it can be redrawn."""
        plan = self.plans.current()
        now = self._clock()
        closed: list[ClosedRequest] = []
        for cluster in plan.clusters:
            for wave in self._repos.migrations.waves(cluster.name):
                if wave.state is not WaveState.REQUESTED:
                    continue
                requested_at = wave.entered_at(WaveState.REQUESTED) or wave.updated_at
                if now < requested_at + plan.approvals.expires_after:
                    continue
                expired = self._expire(wave, f"not decided within {plan.approvals.expires_after}")
                if expired.state is not WaveState.EXPIRED or expired.version != wave.version + 1:
                    continue  # decided (or expired by a click) in the meantime
                ref = RequestRef(wave.id, wave.version)
                try:
                    card = self._card(expired, plan, self._bound_plan_hash(expired), ref=ref)
                except RequestRefused:
                    continue  # the wave left the plan: its request has nothing to show
                closed.append(ClosedRequest(card, self.request_message(wave, wave.version)))
        return closed

    def card(self, wave_id: int, version: int) -> RequestCard:
        """The request card for a wave as it is now (to redraw a message after a refusal)."""
        plan = self.plans.current()
        wave = self._repos.migrations.wave(wave_id)
        return self._card(wave, plan, self._bound_plan_hash(wave), ref=RequestRef(wave_id, version))

    def _expire(self, wave: WaveView, reason: str) -> WaveView:
        try:
            return self._repos.migrations.transition(
                wave.id,
                Trigger.EXPIRE,
                actor=SYSTEM.id,
                expected_version=wave.version,
                payload={"reason": reason},
            )
        except (ConcurrentTransition, IllegalTransition):
            return self._repos.migrations.wave(wave.id)

    def _closed(self, wave: WaveView, ref: RequestRef) -> str:
        if wave.state is WaveState.REQUESTED:
            return (
                f"this request for {wave.label} was replaced by a newer one — use the latest request message"
            )
        decided = {
            WaveState.APPROVED: "approved",
            WaveState.DENIED: "denied",
            WaveState.EXPIRED: "expired",
        }.get(wave.state)
        if decided and wave.version == ref.version + 1:
            return f"{wave.label} is already {decided} — nothing was changed"
        return (
            f"this request for {wave.label} is closed: the wave is now {wave.state.value} — "
            "nothing was changed"
        )

    def _bound_plan_hash(self, wave: WaveView) -> str:
        """The plan hash the wave's current request was made under (from its audited request)."""
        for event in reversed(
            self._repos.audit.events(subject=wave.subject, action=f"wave.{Trigger.REQUEST}")
        ):
            return str(event.payload.get("plan_hash", ""))
        return ""

    def _cycle_approvals(self, wave: WaveView, cycle: int, digest: str) -> tuple[ApprovalView, ...]:
        return tuple(
            a for a in self._repos.approvals.approvals(wave.id, cycle=cycle) if a.plan_hash == digest
        )

    # ---- controlling the wave in flight -------------------------------------------------------

    def control(
        self, actor: Actor, cluster: str | None, trigger: Trigger, *, delivery: str | None = None
    ) -> WaveView:
        """Pause, resume or abort the cluster's wave in flight."""
        plan = self.plans.current()
        name = only_cluster(plan, cluster)
        waves = self._repos.migrations.waves(name)
        sources = {
            Trigger.PAUSE: {WaveState.EXECUTING},
            Trigger.RESUME: {WaveState.PAUSED, WaveState.CANARY_FAILED},
            Trigger.ABORT: ACTIVE | {WaveState.REQUESTED},
        }[trigger]
        target = next((w for w in waves if w.state in sources), None)
        self._authorize(trigger, actor, target, name)
        if target is None:
            moving = [w for w in waves if w.state in ACTIVE | {WaveState.REQUESTED}]
            where = (
                f"{moving[0].label} is {moving[0].state.value}"
                if moving
                else f"no wave of cluster {name} is requested or running"
            )
            states = " or ".join(sorted(s.value for s in sources))
            raise RequestRefused(
                f"nothing to {trigger.value}: {where} (it needs a wave {states}) — nothing was changed"
            )
        try:
            wave = self._waves.fire(name, target.name, trigger, actor, payload={"delivery": delivery})
        except (ConcurrentTransition, IllegalTransition) as race:
            raise RequestRefused(f"{race} — nothing was changed") from race
        migration = self._repos.migrations.get(name)
        if trigger is Trigger.RESUME and migration is not None and migration.status is MigrationStatus.PAUSED:
            # A failed canary paused the whole migration with the wave: resuming the wave resumes it
            # (as the alert's Resume button does), or no later wave would ever start.
            self._repos.migrations.set_status(
                name, MigrationStatus.ACTIVE, actor=actor.id, reason=f"resumed with {wave.label}"
            )
        return wave

    # ---- shared -------------------------------------------------------------------------------

    def _authorize(
        self,
        trigger: Trigger,
        actor: Actor,
        wave: WaveView | None,
        cluster: str,
        *,
        requested_by: str | None = None,
    ) -> None:
        """authorize(), with every refusal audited (as WaveService does for the triggers it fires)."""
        label = wave.label if wave else f"cluster {cluster}'s waves"
        try:
            authorize(trigger, actor, requested_by=requested_by, wave=label)
        except Forbidden as refusal:
            self._repos.audit.append(
                actor.id,
                ACCESS_DENIED,
                wave.subject if wave else f"migration:{cluster}",
                {
                    "trigger": trigger.value,
                    "state": wave.state.value if wave else None,
                    "reason": str(refusal),
                },
            )
            raise

    def _refuse_action(self, actor: Actor, subject: str, reason: str, channel: str) -> None:
        self._repos.audit.append(actor.id, ACTION_REFUSED, subject, {"reason": reason, "channel": channel})

    def _card(
        self,
        wave: WaveView,
        plan: Plan,
        digest: str,
        *,
        approvals: tuple[ApprovalView, ...] = (),
        decided_by: str | None = None,
        decided_at: dt.datetime | None = None,
        ref: RequestRef | None = None,
    ) -> RequestCard:
        waves = plan.waves_for(wave.cluster)
        if not 0 < wave.index <= len(waves) or waves[wave.index - 1].name != wave.name:
            raise RequestRefused(
                f"{wave.label} is no longer in the plan for {wave.cluster} — restore it in the plan file "
                "(registered waves keep their number and name)"
            )
        plan_wave = waves[wave.index - 1]
        requested_at = wave.entered_at(WaveState.REQUESTED) or wave.updated_at
        version = wave.version if wave.state is WaveState.REQUESTED else wave.version - 1
        ref = ref or RequestRef(wave.id, version)
        return RequestCard(
            wave=wave,
            plan_wave=plan_wave,
            ref=ref,
            plan_hash=digest,
            requested_by=wave.requested_by or "",
            requested_at=requested_at,
            expires_at=requested_at + plan.approvals.expires_after,
            required=plan.approvals.required,
            approvals=approvals,
            decided_by=decided_by,
            decided_at=decided_at,
            reports=self.report_glance(ref),
        )

    def report_glance(self, ref: RequestRef) -> ReportGlance | None:
        """The reports' glance kept for request `ref` (beside its readiness message in the thread)."""
        kept = self._repos.slack.message(ref.wave_id, ref.version, MessageKind.READINESS)
        return None if kept is None else ReportGlance.from_facts(kept.facts)

    def cards_to_redraw(self) -> list[tuple[RequestCard, SlackMessageView]]:
        """Each wave the engine or the canary has moved since its request message was last drawn
        here: that (latest) message and the card it should show now — so the header and the outcome
        follow the wave (executing, baking, completed, …), and a decision whose redraw Slack refused
        is shown. Open and expired requests (an expired one may be replaced by a fresh request, whose
        old message says so) are left to the handlers that draw them."""
        plan = self.plans.current()
        out: list[tuple[RequestCard, SlackMessageView]] = []
        for cluster in plan.clusters:
            for wave in self._repos.migrations.waves(cluster.name):
                if wave.state in _DRAWN_BY_HANDLERS:
                    continue
                message = self._repos.slack.latest(wave.id, MessageKind.REQUEST)
                if message is None or message.ts is None or message.facts.get(DRAWN) == wave.version:
                    continue
                try:
                    out.append((self._request_card(wave, RequestRef(wave.id, message.cycle), plan), message))
                except RequestRefused:
                    continue  # the wave left the plan: its message keeps what it showed
        return out

    def request_card(self, ref: RequestRef) -> RequestCard:
        """Request `ref`'s card as it stands: the cycle's decisions so far and, once the request is
        closed, when (and for a denial, by whom) — to redraw the message without losing them."""
        return self._request_card(self._repos.migrations.wave(ref.wave_id), ref, self.plans.current())

    def _request_card(self, wave: WaveView, ref: RequestRef, plan: Plan) -> RequestCard:
        digest = self._bound_plan_hash(wave)
        approvals = self._cycle_approvals(wave, ref.version, digest)
        if wave.version == ref.version:
            return self._card(wave, plan, digest, approvals=approvals, ref=ref)
        deniers = [a.user_id for a in approvals if a.decision is ApprovalDecision.DENY]
        return self._card(
            wave,
            plan,
            digest,
            approvals=approvals,
            decided_by=deniers[-1] if wave.state is WaveState.DENIED and deniers else None,
            decided_at=wave.updated_at,
            ref=ref,
        )


# ---- the messages a wave owns in Slack ----------------------------------------------------------


@dataclass(frozen=True)
class Thread:
    """Where a wave's progress and results go: under its latest request message (or the channel)."""

    cycle: int
    channel: str
    thread_ts: str | None


@dataclass(frozen=True)
class ClusterGlance:
    """One cluster on the App Home: its waves, AL2 nodes left (and where that figure comes from)."""

    cluster: str
    waves: list[WaveView]
    al2_nodes_left: int | None
    al2_source: str
    last_canary: str | None


class WaveMessages:
    """What the Slack notifier keeps: each message's wanted content first, delivery marked after, so a
    message Slack refused is posted or updated again later (`pending`)."""

    def __init__(self, plans: PlanSource, repositories: Repositories) -> None:
        self.plans = plans
        self._repos = repositories

    def thread_of(self, wave_id: int) -> Thread:
        request = self._repos.slack.latest(wave_id, MessageKind.REQUEST)
        if request is None or request.ts is None:
            return Thread(0, self.plans.latest().channels.migration, None)
        return Thread(request.cycle, request.channel, request.ts)

    def want(
        self,
        wave_id: int,
        thread: Thread,
        kind: str,
        *,
        text: str,
        blocks: list[dict[str, Any]],
        facts: dict[str, Any] | None = None,
        in_thread: bool = True,
    ) -> SlackMessageView:
        return self._repos.slack.want(
            wave_id,
            thread.cycle,
            kind,
            channel=thread.channel,
            thread_ts=thread.thread_ts if in_thread else None,
            text=text,
            blocks=blocks,
            facts=facts,
        )

    def delivered(self, message: SlackMessageView, *, ts: str, channel: str | None = None) -> None:
        self._repos.slack.delivered(message.id, message.rev, ts=ts, channel=channel)

    def failed(self, message: SlackMessageView, error: str) -> None:
        self._repos.slack.failed(message.id, error)

    def claim_post(self, message: SlackMessageView) -> bool:
        """Whether this process may post the message now (no other replica is posting it)."""
        return self._repos.slack.claim_post(message.id, message.attempts, ttl=POST_CLAIM_TTL)

    def pending(self, limit: int = 50) -> list[SlackMessageView]:
        """Messages Slack has not shown as wanted. A wave request whose message never got posted is
        dropped from the list once the request is no longer open: nobody should see its buttons."""
        shown: list[SlackMessageView] = []
        for message in self._repos.slack.undelivered(limit):
            if message.kind == MessageKind.REQUEST and message.ts is None:
                wave = self._repos.migrations.wave(message.wave_id)
                if wave.state is not WaveState.REQUESTED or wave.version != message.cycle:
                    self._repos.slack.give_up(message.id, f"{wave.label} is {wave.state.value} now")
                    continue
            shown.append(message)
        return shown

    def want_request(
        self, card: RequestCard, channel: str, *, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        """A request message Slack refused to post: keep it, to be posted when Slack answers again."""
        self._repos.slack.want(
            card.wave.id,
            card.ref.version,
            MessageKind.REQUEST,
            channel=channel,
            thread_ts=None,
            text=text,
            blocks=blocks,
        )

    def glance(self) -> list[ClusterGlance]:
        """Each cluster of the plan at a glance (App Home)."""
        plan = self.plans.current()
        return [self._glance(cluster.name) for cluster in plan.clusters]

    def _glance(self, cluster: str) -> ClusterGlance:
        waves = self._repos.migrations.waves(cluster)
        progress = self._repos.slack.latest_facts(cluster)
        left: int | None = None
        source = "not measured yet: it shows once a wave runs"
        if progress is not None and isinstance(progress.facts.get("al2_nodes_left"), int):
            left = int(progress.facts["al2_nodes_left"])
            wave = progress.facts.get("wave", "the last wave")
            source = f"from {wave}'s progress at {progress.updated_at:%H:%M} UTC"
        else:
            nodes = [n for w in waves for n in self._repos.nodes.nodes(w.id)]
            if nodes:
                left = sum(1 for n in nodes if n.os_family == "AL2" and n.step_status != "replaced")
                source = "from the waves' node lists"
        return ClusterGlance(cluster, waves, left, source, last_canary(self._repos, cluster))


def last_canary(repositories: Repositories, cluster: str) -> str | None:
    """The cluster's latest canary run in one line — which wave, its verdict and when, the failing
    checks, the bake's state and an open alert — or None while no wave has baked."""
    finished = [
        (run.finished_at, wave, run)
        for wave in repositories.migrations.waves(cluster)
        for run in repositories.canary.runs(wave.id)
        if run.finished_at is not None
    ]
    if not finished:
        return None
    at, wave, run = max(finished, key=lambda f: (f[0], f[2].id))
    failing = run.failing_checks
    line = f"{wave.label}: {run.verdict}" + (f" ({', '.join(failing)})" if failing else "")
    line += f" at {at:%H:%M} UTC"
    bake = repositories.canary.bake(wave.id)
    if bake is not None:
        line += f"; baking until {bake.until:%H:%M} UTC" if bake.running else f"; bake {bake.outcome}"
    episode = repositories.canary.open_episode_of(wave.id)
    if episode is not None:
        line += f" — :rotating_light: alert open: {episode.summary}"
    return line
