"""helm/migratebot through Helm's own Go SDK: it lints, renders in every supported shape, every
manifest is valid Kubernetes, the schema refuses mistakes, secrets stay out of it, and the pods run
restricted."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from chart_support import (
    AS_ITSELF,
    CHART,
    EMBEDDED,
    EVERYTHING_ON,
    IRSA,
    NAMESPACE,
    chart,
    deployment_container,
    env_of,
    notes,
    of_kind,
    one,
    render,
)

from bot.plan import load_plan

REPO = CHART.parents[1]

SHAPES = [
    pytest.param({}, id="defaults"),
    pytest.param(EVERYTHING_ON, id="ingress-networkpolicy-servicemonitor-podidentity"),
    pytest.param(IRSA, id="irsa"),
    pytest.param(EMBEDDED, id="embedded-sqlite"),
]

# Kinds kubernetes-validate has no schema for (custom resources), and how each is checked instead.
CUSTOM_KINDS = {"ServiceMonitor": "test_the_service_monitor_scrapes_the_bots_metrics_port"}


@pytest.mark.parametrize("values", SHAPES)
def test_helm_lint_passes_strictly(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems


@pytest.mark.parametrize("values", SHAPES)
@pytest.mark.parametrize("kube_version", ["1.31.0", kubernetes_validate.latest_version()])
def test_every_rendered_manifest_validates_against_the_kubernetes_schema(
    values: dict[str, Any], kube_version: str
) -> None:
    checked = []
    for doc in render(values):
        if doc["kind"] in CUSTOM_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, kube_version, strict=True)
            continue
        # strict: an unknown field anywhere is an error, not ignored as the apiserver would.
        kubernetes_validate.validate(doc, kube_version, strict=True)
        checked.append(doc["kind"])
    assert {"Deployment", "ServiceAccount", "ClusterRole", "Role", "ConfigMap", "Service"} <= set(checked)


def test_the_optional_pieces_render_only_when_enabled() -> None:
    defaults = {d["kind"] for d in render()}
    assert not defaults & {"Ingress", "NetworkPolicy", "ServiceMonitor", "PersistentVolumeClaim"}
    everything = {d["kind"] for d in render(EVERYTHING_ON)}
    assert {"Ingress", "NetworkPolicy", "ServiceMonitor"} <= everything


def test_the_service_monitor_scrapes_the_bots_metrics_port() -> None:
    # kubernetes-validate ships no schema for monitoring.coreos.com: the ServiceMonitor is checked
    # here for what makes it work — it selects this Service and names its port and /metrics.
    docs = render(EVERYTHING_ON)
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_deployment_runs_two_replicas_that_elect_a_leader_through_a_lease() -> None:
    docs = render()
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    env = env_of(deployment_container(docs))
    assert env["MIGRATEBOT_LEASE_NAME"]["value"] == "migratebot"
    assert env["MIGRATEBOT_LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    (role,) = [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == NAMESPACE]
    lease_rules = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert {v for r in lease_rules for v in r["verbs"]} == {"create", "get", "update"}
    assert all(r.get("resourceNames") == ["migratebot"] for r in lease_rules if "create" not in r["verbs"])


def test_the_pods_run_restricted_as_the_images_user() -> None:
    docs = render(EMBEDDED)  # the embedded shape also has the db-upgrade init container
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod["initContainers"]:
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, container["name"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        assert sc["allowPrivilegeEscalation"] is False, container["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] == "tmp", container["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "migratebot-data"


def test_probes_call_healthz_and_readyz_on_port_3000() -> None:
    container = deployment_container(render())
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", 3000)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = env_of(container)
    assert env["MIGRATEBOT_HTTP_PORT"]["value"] == "3000"


@pytest.mark.parametrize("values", SHAPES)
def test_no_shape_renders_a_secret(values: dict[str, Any]) -> None:
    assert of_kind(render(values), "Secret") == []


def test_slack_tokens_and_the_database_url_come_from_existing_secrets_only() -> None:
    docs = render(EVERYTHING_ON)
    env = env_of(deployment_container(docs))
    refs = {
        name: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for name, e in env.items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "SLACK_BOT_TOKEN": ("migratebot-slack", "SLACK_BOT_TOKEN"),
        "SLACK_SIGNING_SECRET": ("migratebot-slack", "SLACK_SIGNING_SECRET"),
        "SLACK_APP_TOKEN": ("migratebot-slack", "SLACK_APP_TOKEN"),
        "MIGRATEBOT_DATABASE_URL": ("migratebot-database", "url"),
    }
    assert all("value" not in env[name] for name in refs)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [value] if isinstance(value, str) else []


def test_no_default_value_is_a_secret() -> None:
    with chart() as c:
        defaults = c.values
    markers = ("xoxb-", "xoxp-", "xapp-", "://", "AKIA", "password")
    assert [s for s in strings_in(defaults) if any(m in s for m in markers)] == []
    assert defaults["slack"]["existingSecret"] and defaults["database"]["existingSecret"]


def test_irsa_annotates_the_service_account_and_pod_identity_does_not() -> None:
    irsa = one(render(IRSA), "ServiceAccount")
    assert irsa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "arn:aws:iam::123456789012:role/migratebot"
    )
    pod_identity = one(render(EVERYTHING_ON), "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" not in pod_identity["metadata"].get("annotations", {})
    text = notes(EVERYTHING_ON)
    assert (
        "aws eks create-pod-identity-association --cluster-name prod" in text
        and "--namespace migratebot --service-account migratebot" in text
    )


def test_with_impersonation_the_notes_say_which_rights_the_impersonated_people_need() -> None:
    text = notes(EVERYTHING_ON)
    assert "the bot changes nothing in the cluster as itself" in text and "(alice@example.com)" in text
    assert "pods/eviction create" in text and "kubectl auth can-i" in text
    assert "Impersonation" not in notes(AS_ITSELF)
    # The default values ship the example plan: its people, read from the plan itself.
    assert "acts as the plan's people\n   (alice@example.com, carol@example.com)" in notes()


def test_the_plan_is_mounted_from_a_config_map_and_named_by_migratebot_plan() -> None:
    plan_text = "version: 1\n# mine\n"
    docs = render({"plan": {"inline": plan_text}})
    config_map = one(docs, "ConfigMap")
    assert config_map["data"]["plan.yaml"].strip() == plan_text.strip()
    container = deployment_container(docs)
    assert env_of(container)["MIGRATEBOT_PLAN"]["value"] == "/etc/migratebot/plan/plan.yaml"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "plan")
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/migratebot/plan", True)
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "plan", "configMap": {"name": config_map["metadata"]["name"]}} in volumes


def test_a_plan_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/plan"])

    assert checksum({"plan": {"inline": "version: 1\n"}}) != checksum({"plan": {"inline": "version: 2\n"}})


def test_without_a_plan_the_chart_ships_the_repositorys_example_and_says_so() -> None:
    shipped = CHART / "files" / "plan.example.yaml"
    assert shipped.read_text() == (REPO / "examples" / "plan.yaml").read_text()
    load_plan(shipped)  # valid, or this raises with every problem
    assert "WARNING: no plan was given" in notes()
    assert "WARNING" not in notes({"plan": {"inline": "version: 1\n"}})


def test_the_bots_own_pdb_keeps_one_replica_through_drains() -> None:
    docs = render()
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_a_single_embedded_replica_has_no_budget_that_would_block_its_nodes_drain() -> None:
    docs = render(EMBEDDED)
    assert of_kind(docs, "PodDisruptionBudget") == []
    # Its ReadWriteOnce volume cannot be mounted by a surge pod elsewhere: replace, don't surge.
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert one(render(), "Deployment")["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": 0,
        "maxSurge": 1,
    }


def test_the_schema_upgrade_job_runs_before_install_and_upgrade_outside_the_bots_selectors() -> None:
    docs = render()
    job = one(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["migratebot", "db", "upgrade"]
    assert pod["automountServiceAccountToken"] is False
    selector = one(docs, "Service")["spec"]["selector"]
    assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_the_ingress_exposes_only_slack_events() -> None:
    ingress = one(render(EVERYTHING_ON), "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert [p["path"] for p in rule["http"]["paths"]] == ["/slack/events"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"replicaCount": "two"}, "at '/replicaCount': got string, want integer", id="type"),
        pytest.param({"replicas": 2}, "additional properties 'replicas' not allowed", id="unknown-key"),
        pytest.param(
            {"slack": {"botToken": "xoxb-1"}},
            "at '/slack': additional properties 'botToken' not allowed",
            id="secret-value-refused",
        ),
        pytest.param(
            {"database": {"existingSecret": ""}},
            "at '/replicaCount': maximum: got 2, want 1",
            id="sqlite-with-two-replicas",
        ),
        pytest.param(
            {"serviceAccount": {"irsaRoleArn": "migratebot-role"}},
            "at '/serviceAccount/irsaRoleArn'",
            id="not-an-arn",
        ),
        pytest.param(
            {**IRSA, "podIdentity": {"enabled": True}},
            "at '/serviceAccount/irsaRoleArn': value must be ''",
            id="irsa-and-pod-identity",
        ),
        pytest.param(
            {"impersonation": {"enabled": True, "groups": ["sre"]}},
            "at '/impersonation/users': minItems: got 0, want 1",
            id="impersonation-with-nobody-to-act-as",
        ),
    ],
)
def test_the_schema_refuses_a_bad_value_naming_where_and_why(values: dict[str, Any], message: str) -> None:
    with chart() as c, pytest.raises(helm.HelmValuesError) as refused:
        c.render(values=values, name="migratebot", namespace=NAMESPACE)
    assert message in str(refused.value)
    report = helm.lint(CHART, values, namespace=NAMESPACE)
    assert any(message in e for e in report["errors"])


def test_the_bot_finds_its_clusters_through_a_mounted_kubeconfig_when_asked() -> None:
    assert "KUBECONFIG" not in env_of(deployment_container(render()))
    shapes: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"kubeconfig": {"inClusterContext": "prod"}}, {"configMap": {"name": "migratebot-kubeconfig"}}),
        (
            {"kubeconfig": {"inClusterContext": "prod", "existingSecret": "kubeconfigs"}},
            {"secret": {"secretName": "kubeconfigs", "items": [{"key": "config", "path": "config"}]}},
        ),
    ]
    for values, volume in shapes:
        docs = render(values)
        container = deployment_container(docs)
        assert env_of(container)["KUBECONFIG"]["value"] == "/etc/migratebot/kube/config"
        volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
        assert {"name": "kubeconfig", **volume} in volumes
