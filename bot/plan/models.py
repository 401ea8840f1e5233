"""The plan's models: what an operator writes in plan.yaml, validated and frozen.

Every model refuses unknown keys (a typo must not silently drop a safety setting) and is immutable
once loaded: approvals bind to the plan hash, so the plan in memory is the plan that was approved.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.domain.errors import DomainError
from bot.plan.fields import (
    AwsRegion,
    Duration,
    KubeName,
    LabelKey,
    LabelValue,
    Quantity,
    SlackChannelId,
    SlackUsergroupId,
    SlackUserId,
    StrictBoolean,
    StrictInteger,
    Text,
    WaveName,
    non_empty,
    plan_error,
)
from bot.plan.summary import PlanSummary, summarize

Loc = tuple[str | int, ...]


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnknownCluster(DomainError, LookupError):
    """A cluster name the plan doesn't define."""


# ---- clusters, channels, roles, approvals ----------------------------------------------------


class Cluster(PlanModel):
    """One EKS cluster the plan migrates; `kube_context` names its context in KUBECONFIG."""

    name: Annotated[str, Field(min_length=1, max_length=100, examples=["prod-us-west-2"])]
    region: Annotated[AwsRegion, Field(examples=["us-west-2"])]
    kube_context: Annotated[str, Field(min_length=1, examples=["prod-us-west-2"])]


class Channels(PlanModel):
    """Where the bot talks. `migration` and `alerts` may be the same channel."""

    migration: Annotated[SlackChannelId, Field(examples=["C024BE91L"])]
    alerts: Annotated[SlackChannelId, Field(examples=["C024BE91M"])]


class RoleMembers(PlanModel):
    """Who holds a role: Slack users, and/or Slack user groups resolved at runtime. At least one."""

    users: tuple[SlackUserId, ...] = Field(default=(), examples=[["U024BE7LH"]])
    usergroups: tuple[SlackUsergroupId, ...] = Field(default=(), examples=[["S0614TZR7"]])

    @model_validator(mode="after")
    def _someone_holds_it(self) -> RoleMembers:
        if not self.users and not self.usergroups:
            raise plan_error(
                "nobody holds this role",
                "list Slack user IDs under users: [U…] and/or user group IDs under usergroups: [S…]",
            )
        return self

    def ids(self) -> set[str]:
        return {*self.users, *self.usergroups}


class Roles(PlanModel):
    """Who may do what: SREs request waves, team leads approve them, on-call answers canary alerts.

    All three roles are required: a migration with nobody to approve or answer alerts can't run safely.
    """

    sre: RoleMembers
    team_leads: RoleMembers
    oncall: RoleMembers

    def ids(self) -> set[str]:
        return self.sre.ids() | self.team_leads.ids() | self.oncall.ids()


class Approvals(PlanModel):
    """How many team leads must approve a wave request, and how long a request waits for them.

    Defaults: one approval, requests expire after 30 minutes. Self-approval is never allowed and is
    not a setting: the person who requested a wave can't approve it.
    """

    required: Annotated[StrictInteger, Field(ge=1, examples=[1])] = 1
    expires_after: Annotated[Duration, Field(examples=["30m"])] = timedelta(minutes=30)


# ---- target: the Bottlerocket NodePool and EC2NodeClass ---------------------------------------

_AMI_ALIAS = re.compile(r"bottlerocket@(v\d+\.\d+\.\d+|latest)")


class SubnetSelectorTerm(PlanModel):
    """Karpenter's subnetSelectorTerms item: tags, or an id on its own."""

    tags: dict[Text, Text] | None = None
    id: str | None = None

    @model_validator(mode="after")
    def _one_way_to_select(self) -> SubnetSelectorTerm:
        _check_selector_term(self.tags, self.id, None)
        return self


class SecurityGroupSelectorTerm(PlanModel):
    """Karpenter's securityGroupSelectorTerms item: tags, a name, or an id on its own."""

    tags: dict[Text, Text] | None = None
    id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one_way_to_select(self) -> SecurityGroupSelectorTerm:
        _check_selector_term(self.tags, self.id, self.name)
        return self


def _check_selector_term(tags: dict[str, str] | None, id_: str | None, name: str | None) -> None:
    given = [key for key, value in (("tags", tags), ("id", id_), ("name", name)) if value]
    if not given:
        raise plan_error("a selector term selects nothing", "add tags: {key: value} or an id")
    if len(given) > 1 and ("id" in given or "name" in given):
        raise plan_error(
            f"a selector term combines {' and '.join(given)}; Karpenter takes an id or a name on its own",
            "split them into separate terms (terms are ORed)",
        )


class EC2NodeClass(PlanModel):
    """The Karpenter EC2NodeClass the new Bottlerocket nodes use.

    `ami_alias` must be pinned (bottlerocket@v1.26.2): a plan approved for one AMI must not roll out
    another. `bottlerocket@latest` needs `allow_latest: true`. `data_volume_gib` defaults to 20, the
    size Karpenter gives Bottlerocket's data volume (/dev/xvdb) when none is set.
    """

    name: Annotated[KubeName, Field(examples=["bottlerocket"])]
    ami_alias: Annotated[str, Field(examples=["bottlerocket@v1.26.2"])]
    allow_latest: StrictBoolean = False
    role: Annotated[str, Field(min_length=1, examples=["KarpenterNodeRole-prod"])]
    subnet_selector_terms: Annotated[
        tuple[SubnetSelectorTerm, ...],
        Field(examples=["[{tags: {karpenter.sh/discovery: prod}}]"]),
        non_empty("no subnet selector terms", "add a term: - tags: {karpenter.sh/discovery: <cluster>}"),
    ]
    security_group_selector_terms: Annotated[
        tuple[SecurityGroupSelectorTerm, ...],
        Field(examples=["[{tags: {karpenter.sh/discovery: prod}}]"]),
        non_empty(
            "no security group selector terms", "add a term: - tags: {karpenter.sh/discovery: <cluster>}"
        ),
    ]
    data_volume_gib: Annotated[StrictInteger, Field(ge=1, le=16_384)] = 20
    tags: dict[Text, Text] = Field(default_factory=dict)

    @field_validator("ami_alias")
    @classmethod
    def _bottlerocket_pinned(cls, alias: str) -> str:
        if not _AMI_ALIAS.fullmatch(alias):
            family = alias.split("@", 1)[0]
            if family != "bottlerocket":
                raise plan_error(
                    f"{alias!r} is not a Bottlerocket AMI alias; migratebot moves nodes to Bottlerocket only",
                    "write bottlerocket@v<major>.<minor>.<patch>, e.g. bottlerocket@v1.26.2",
                )
            raise plan_error(
                f"{alias!r} is not pinned to a Bottlerocket release",
                "write bottlerocket@v<major>.<minor>.<patch>, e.g. bottlerocket@v1.26.2",
            )
        return alias

    @model_validator(mode="after")
    def _latest_needs_consent(self) -> EC2NodeClass:
        if self.ami_alias == "bottlerocket@latest" and not self.allow_latest:
            _raise_at(
                ("ami_alias",),
                plan_error(
                    "bottlerocket@latest would let new nodes change AMI in the middle of the migration",
                    "pin a release (bottlerocket@v1.26.2), or add allow_latest: true to accept that",
                ),
            )
        return self


class RequirementOperator(enum.StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"
    GTE = "Gte"
    LTE = "Lte"


class Requirement(PlanModel):
    """A NodePool requirement, as Karpenter's: key, operator, values (and optional min_values)."""

    key: LabelKey
    operator: RequirementOperator
    values: tuple[Text, ...] = ()
    min_values: Annotated[StrictInteger, Field(ge=1, le=50)] | None = None

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Requirement:
        op = self.operator
        if op in (RequirementOperator.IN, RequirementOperator.NOT_IN) and not self.values:
            _raise_at(("values",), plan_error(f"operator {op.value} needs values", "list one or more values"))
        if op in (RequirementOperator.EXISTS, RequirementOperator.DOES_NOT_EXIST) and self.values:
            _raise_at(
                ("values",), plan_error(f"operator {op.value} takes no values", "remove values, or use In")
            )
        numeric = (
            RequirementOperator.GT,
            RequirementOperator.LT,
            RequirementOperator.GTE,
            RequirementOperator.LTE,
        )
        if op in numeric and (len(self.values) != 1 or not self.values[0].isdigit()):
            _raise_at(
                ("values",),
                plan_error(
                    f"operator {op.value} needs exactly one non-negative integer value",
                    'write values: ["4"]',
                ),
            )
        if (
            self.min_values is not None
            and op is RequirementOperator.IN
            and len(self.values) < self.min_values
        ):
            _raise_at(
                ("min_values",),
                plan_error(
                    f"min_values is {self.min_values} but only {len(self.values)} values are listed",
                    "list at least min_values values, or lower min_values",
                ),
            )
        return self


class Taint(PlanModel):
    key: LabelKey
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(PlanModel):
    """The Karpenter NodePool that provisions the Bottlerocket nodes.

    `labels` go on every new node; `requirements` use Karpenter's keys and operators; `limits` cap
    the pool's total resources (none by default); `taints` are optional.
    """

    name: Annotated[KubeName, Field(examples=["bottlerocket"])]
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    requirements: tuple[Requirement, ...] = ()
    limits: dict[str, Quantity] = Field(default_factory=dict)
    taints: tuple[Taint, ...] = ()


class Target(PlanModel):
    ec2nodeclass: EC2NodeClass
    nodepool: NodePool


# ---- waves ------------------------------------------------------------------------------------


class Strategy(enum.StrEnum):
    """drain: cordon and drain the old nodes (any selector). drift: change the selected Karpenter
    NodePools to the Bottlerocket EC2NodeClass and let Karpenter's drift replace their nodes."""

    DRAIN = "drain"
    DRIFT = "drift"


class Selector(PlanModel):
    """Which AL2 nodes a wave moves. Kinds combine with AND; values inside a kind with OR."""

    nodepools: tuple[KubeName, ...] = ()
    managed_node_groups: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    node_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    namespaces: tuple[KubeName, ...] = ()

    @model_validator(mode="after")
    def _selects_something(self) -> Selector:
        if not (self.nodepools or self.managed_node_groups or self.node_labels or self.namespaces):
            raise plan_error(
                "a wave needs at least one selector",
                "add nodepools, managed_node_groups, node_labels or namespaces",
            )
        return self

    def text(self) -> str:
        """One line for people: "nodepools=general-al2; node_labels=team=web"."""
        parts = []
        if self.nodepools:
            parts.append("nodepools=" + ",".join(self.nodepools))
        if self.managed_node_groups:
            parts.append("managed_node_groups=" + ",".join(self.managed_node_groups))
        if self.node_labels:
            parts.append("node_labels=" + ",".join(f"{k}={v}" for k, v in self.node_labels.items()))
        if self.namespaces:
            parts.append("namespaces=" + ",".join(self.namespaces))
        return "; ".join(parts)


class Wave(PlanModel):
    """One step of the migration.

    Defaults: strategy drain, one node at a time, a 10 minute bake. `cluster` may be left out when
    the plan has a single cluster. `force_unreplicated` (default false) lets the drain evict pods no
    controller will recreate. `finish_outside_window` overrides the change window's
    finish_running_wave for this wave; unset, the window decides.
    """

    name: Annotated[WaveName, Field(examples=["stateless-web"])]
    cluster: str | None = None
    selector: Annotated[Selector, Field(examples=["{nodepools: [general-al2]}"])]
    strategy: Strategy = Strategy.DRAIN
    max_parallel_nodes: Annotated[StrictInteger, Field(ge=1, le=1000)] = 1
    bake: Annotated[Duration, Field(examples=["10m"])] = timedelta(minutes=10)
    force_unreplicated: StrictBoolean = False
    finish_outside_window: StrictBoolean | None = None

    @model_validator(mode="after")
    def _drift_needs_nodepools(self) -> Wave:
        if self.strategy is Strategy.DRIFT and not self.selector.nodepools:
            _raise_at(
                ("strategy",),
                plan_error(
                    "strategy drift replaces the nodes of Karpenter NodePools, but this wave selects "
                    "no nodepools",
                    "select the wave's nodes with nodepools: [...], or use strategy: drain",
                ),
            )
        if self.strategy is Strategy.DRIFT and self.selector.managed_node_groups:
            _raise_at(
                ("strategy",),
                plan_error(
                    "strategy drift can't replace managed node group nodes: Karpenter doesn't own them",
                    "move managed_node_groups to a wave with strategy: drain",
                ),
            )
        return self


# ---- change windows, canary, blocking, impersonation ------------------------------------------


class ChangeWindow(PlanModel):
    """When waves may start: from each `schedule` firing (5-field cron in `timezone`) for `duration`.

    Defaults: timezone UTC; finish_running_wave true, so a wave that started inside the window runs
    to completion rather than stopping half-drained when the window closes.
    """

    # Declared before `schedule` so that the cron check can read it.
    timezone: Annotated[str, Field(examples=["Europe/Berlin"])] = "UTC"
    schedule: Annotated[str, Field(examples=['"0 9 * * 1-4"'])]
    duration: Annotated[Duration, Field(examples=["6h"])]
    finish_running_wave: StrictBoolean = True

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise plan_error(
                f"{name!r} is not an IANA time zone",
                "write a zone like UTC, Europe/Berlin or America/New_York",
            ) from exc
        return name

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, expression: str, info: ValidationInfo) -> str:
        timezone = info.data.get("timezone", "UTC")
        try:
            CronTrigger.from_crontab(expression, timezone=timezone)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise plan_error(
                f"{expression!r} is not a 5-field cron schedule: {exc}",
                'write minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-4" (09:00 Mon–Thu)',
            ) from exc
        return expression


class Check(enum.StrEnum):
    NODES_READY = "nodes_ready"
    WORKLOADS_READY = "workloads_ready"
    RESTARTS = "restarts"
    CRASHLOOP = "crashloop"
    PENDING = "pending"
    EVENTS = "events"
    PROMETHEUS_QUERY = "prometheus_query"
    PROMETHEUS_ALERTS = "prometheus_alerts"


DEFAULT_CHECKS = (
    Check.NODES_READY,
    Check.WORKLOADS_READY,
    Check.RESTARTS,
    Check.CRASHLOOP,
    Check.PENDING,
    Check.EVENTS,
)


class Prometheus(PlanModel):
    """Where the canary's Prometheus checks ask, and what.

    prometheus_query fails when `<query result> <comparison> <threshold>` holds (default comparison
    ">"). prometheus_alerts fails on firing alerts matching `alerts_filter` (PromQL label matchers
    for ALERTS, e.g. severity="critical"; all firing alerts when unset).
    """

    url: Annotated[str, Field(pattern=r"^https?://\S+$", examples=["http://prometheus.monitoring:9090"])]
    query: str | None = None
    threshold: float | None = None
    comparison: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    alerts_filter: str | None = None


class Canary(PlanModel):
    """Timed checks after each wave, Argo Rollouts style: pass, fail or inconclusive, with limits.

    Defaults: every minute; on-call is alerted and the migration paused after 2 failed or 3
    inconclusive runs; the checks that need no Prometheus; a pod restarting 3 times or pending
    for 5 minutes counts as a failure.
    """

    interval: Duration = timedelta(minutes=1)
    failure_limit: Annotated[StrictInteger, Field(ge=1)] = 2
    inconclusive_limit: Annotated[StrictInteger, Field(ge=1)] = 3
    checks: Annotated[
        tuple[Check, ...], non_empty("no canary checks", f"list checks, e.g. [{', '.join(DEFAULT_CHECKS)}]")
    ] = DEFAULT_CHECKS
    restart_threshold: Annotated[StrictInteger, Field(ge=1)] = 3
    pending_timeout: Duration = timedelta(minutes=5)
    prometheus: Prometheus | None = None

    @model_validator(mode="after")
    def _prometheus_checks_have_prometheus(self) -> Canary:
        seen: set[Check] = set()
        for index, check in enumerate(self.checks):
            if check in seen:
                _raise_at(
                    ("checks", index), plan_error(f"check {check.value} is listed twice", "list it once")
                )
            seen.add(check)
        needs = [c for c in (Check.PROMETHEUS_QUERY, Check.PROMETHEUS_ALERTS) if c in seen]
        if needs and self.prometheus is None:
            _raise_at(
                ("checks", self.checks.index(needs[0])),
                plan_error(
                    f"check {needs[0].value} needs a Prometheus to ask",
                    "add prometheus: {url: http://prometheus.monitoring:9090, ...} under canary",
                ),
            )
        if Check.PROMETHEUS_QUERY in seen and self.prometheus is not None:
            missing = [k for k in ("query", "threshold") if getattr(self.prometheus, k) is None]
            if missing:
                _raise_at(
                    ("prometheus",),
                    plan_error(
                        f"check prometheus_query needs prometheus.{' and prometheus.'.join(missing)}",
                        "add query: <PromQL> and threshold: <number> under canary.prometheus",
                    ),
                )
        return self


_SELECTOR_REQUIREMENT = re.compile(
    r"\s*(!\s*[A-Za-z0-9./_-]+"
    r"|[A-Za-z0-9./_-]+"
    r"|[A-Za-z0-9./_-]+\s*(==|=|!=)\s*[A-Za-z0-9._-]*"
    r"|[A-Za-z0-9./_-]+\s+(in|notin)\s*\(\s*[A-Za-z0-9._-]*(\s*,\s*[A-Za-z0-9._-]*)*\s*\))\s*"
)


def _selector_requirements(selector: str) -> Iterable[str]:
    depth, start = 0, 0
    for index, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            yield selector[start:index]
            start = index + 1
    yield selector[start:]


class Blocking(PlanModel):
    """What holds a wave back, with kured's semantics.

    `prometheus_alerts`: a regular expression over alert names; any firing alert whose name does NOT
    match blocks (kured's --alert-filter-regexp names alerts to ignore); unset, alerts don't block.
    It asks the canary's Prometheus. `pod_selectors`: Kubernetes label selectors; a running pod
    matching any of them on a node of the wave blocks that node (kured's --blocking-pod-selector).
    """

    prometheus_alerts: str | None = None
    pod_selectors: tuple[str, ...] = ()

    @field_validator("prometheus_alerts")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise plan_error(
                    f"{pattern!r} is not a regular expression: {exc}",
                    'write a regex over alert names, e.g. "^(Watchdog|InfoInhibitor)$"',
                ) from exc
        return pattern

    @field_validator("pod_selectors")
    @classmethod
    def _label_selectors(cls, selectors: tuple[str, ...]) -> tuple[str, ...]:
        errors = [
            InitErrorDetails(
                type=plan_error(
                    f"{selector!r} is not a Kubernetes label selector",
                    "write it as kubectl -l takes it: app=db, tier in (a,b), !canary",
                ),
                loc=(index,),
                input=selector,
            )
            for index, selector in enumerate(selectors)
            if not selector.strip()
            or not all(_SELECTOR_REQUIREMENT.fullmatch(part) for part in _selector_requirements(selector))
        ]
        if errors:
            raise ValidationError.from_exception_data("pod_selectors", errors)
        return selectors


class Impersonation(PlanModel):
    """The Kubernetes identity the bot impersonates when a given Slack user (or group) acts."""

    user: Annotated[str, Field(min_length=1, examples=["alice@example.com"])]
    groups: tuple[Annotated[str, Field(min_length=1)], ...] = ()


# ---- the plan ---------------------------------------------------------------------------------


class Plan(PlanModel):
    """A whole migration plan. See examples/plan.yaml.

    Defaults: approvals (1 approval, 30m expiry), canary (see Canary), no blocking, no impersonation.
    clusters, waves and change_windows need at least one entry each: with no change window the bot
    would never start a wave.
    """

    version: Literal[1]
    clusters: Annotated[
        tuple[Cluster, ...],
        non_empty("the plan has no clusters", "add - {name: prod, region: us-west-2, kube_context: prod}"),
    ]
    channels: Channels
    roles: Roles
    approvals: Approvals = Approvals()
    target: Target
    waves: Annotated[
        tuple[Wave, ...],
        non_empty("the plan has no waves", "add one entry per wave: - {name: …, selector: {…}, bake: 10m}"),
    ]
    change_windows: Annotated[
        tuple[ChangeWindow, ...],
        non_empty(
            "the plan has no change windows, so no wave could ever start",
            'add - {schedule: "0 9 * * 1-4", duration: 6h, timezone: UTC}',
        ),
    ]
    canary: Canary = Canary()
    blocking: Blocking = Blocking()
    impersonation: dict[Annotated[str, Field(min_length=1)], Impersonation] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rules_across_sections(self) -> Plan:
        breaks = rule_breaks(
            clusters=self.clusters,
            roles=self.roles,
            approvals=self.approvals,
            waves=enumerate(self.waves),
            canary=self.canary,
            blocking=self.blocking,
            impersonation=self.impersonation,
        )
        if breaks:
            raise ValidationError.from_exception_data(
                "Plan", [InitErrorDetails(type=error, loc=loc, input=None) for loc, error in breaks]
            )
        return self

    def cluster(self, name: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        known = ", ".join(c.name for c in self.clusters)
        raise UnknownCluster(f"the plan has no cluster {name!r} — use one of: {known}")

    def waves_for(self, cluster_name: str) -> list[Wave]:
        """The cluster's waves in plan order; a wave without `cluster` belongs to the only cluster."""
        self.cluster(cluster_name)
        return [wave for wave in self.waves if (wave.cluster or self.clusters[0].name) == cluster_name]

    def summary(self) -> PlanSummary:
        return summarize(self)


def _raise_at(loc: Loc, error: PydanticCustomError) -> None:
    raise ValidationError.from_exception_data("plan", [InitErrorDetails(type=error, loc=loc, input=None)])


def rule_breaks(
    *,
    clusters: tuple[Cluster, ...] | None,
    roles: Roles | None,
    approvals: Approvals | None,
    waves: Iterable[tuple[int, Wave]] | None,
    canary: Canary | None,
    blocking: Blocking | None,
    impersonation: dict[str, Impersonation] | None,
) -> list[tuple[Loc, PydanticCustomError]]:
    """Every rule between sections that the plan breaks; a section that is None is not checked.

    The loader calls this on the sections (and the waves) that validated on their own when others
    didn't, so one run reports a typo in a wave and a duplicate wave name together. `waves` pairs
    each wave with its index in the plan.
    """
    breaks: list[tuple[Loc, PydanticCustomError]] = []
    cluster_names: list[str] = []
    if clusters is not None:
        for index, cluster in enumerate(clusters):
            if cluster.name in cluster_names:
                breaks.append(
                    (
                        ("clusters", index, "name"),
                        plan_error(
                            f"cluster {cluster.name!r} is listed twice", "give each cluster one entry"
                        ),
                    )
                )
            cluster_names.append(cluster.name)
    if waves is not None:
        seen: set[str] = set()
        for index, wave in waves:
            if wave.name in seen:
                breaks.append(
                    (
                        ("waves", index, "name"),
                        plan_error(
                            f"wave name {wave.name!r} is used by an earlier wave",
                            "give each wave its own name: people name waves in Slack commands",
                        ),
                    )
                )
            seen.add(wave.name)
            if clusters is None:
                continue
            if wave.cluster is not None and wave.cluster not in cluster_names:
                breaks.append(
                    (
                        ("waves", index, "cluster"),
                        plan_error(
                            f"wave {wave.name!r} names cluster {wave.cluster!r}, "
                            "which the plan doesn't define",
                            f"use one of the plan's clusters: {', '.join(cluster_names)}",
                        ),
                    )
                )
            if wave.cluster is None and len(set(cluster_names)) > 1:
                breaks.append(
                    (
                        ("waves", index),
                        plan_error(
                            f"wave {wave.name!r} doesn't say which cluster it moves, and the plan has "
                            f"{len(set(cluster_names))}",
                            f"add cluster: with one of {', '.join(cluster_names)}",
                        ),
                    )
                )
    if roles is not None and approvals is not None:
        leads = set(roles.team_leads.users)
        # With user groups the team is only known at runtime; the engine checks it then.
        if not roles.team_leads.usergroups and approvals.required > len(leads):
            breaks.append(
                (
                    ("approvals", "required"),
                    plan_error(
                        f"{approvals.required} approvals are required but roles.team_leads has only "
                        f"{len(leads)} user{'s' if len(leads) != 1 else ''}, "
                        "so no wave could ever be approved",
                        f"lower approvals.required to {len(leads)} or add team leads",
                    ),
                )
            )
    if roles is not None and impersonation is not None:
        holders = roles.ids()
        for slack_id in impersonation:
            if slack_id not in holders:
                breaks.append(
                    (
                        ("impersonation", slack_id, "[key]"),
                        plan_error(
                            f"{slack_id!r} holds no role in the plan, so it would never act",
                            "use a user or user group ID listed under roles, or add it to a role",
                            at_key=True,
                        ),
                    )
                )
    if (
        blocking is not None
        and canary is not None
        and blocking.prometheus_alerts
        and canary.prometheus is None
    ):
        breaks.append(
            (
                ("blocking", "prometheus_alerts"),
                plan_error(
                    "blocking on Prometheus alerts needs a Prometheus to ask",
                    "add canary.prometheus.url, or remove blocking.prometheus_alerts",
                ),
            )
        )
    return breaks
