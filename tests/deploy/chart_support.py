"""Render helm/migratebot with Helm's own Go SDK (helm-python-sdk) and read the manifests as dicts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "migratebot"
RELEASE = "migratebot"
NAMESPACE = "migratebot"

JSON = dict[str, Any]


def _plan_mapping_nobody() -> str:
    plan = yaml.safe_load((CHART.parents[1] / "examples" / "plan.yaml").read_text())
    plan.pop("impersonation")
    return str(yaml.safe_dump(plan, sort_keys=False))


# The example plan without its `impersonation:` section: the bot makes the cluster's changes itself,
# so the chart grants it the write verbs (the default values ship the example plan, which maps people).
AS_ITSELF: JSON = {"plan": {"inline": _plan_mapping_nobody()}}

# Every optional piece switched on at once (Pod Identity instead of IRSA, HTTP mode through an Ingress).
EVERYTHING_ON: JSON = {
    "ingress": {"enabled": True, "className": "alb", "tls": {"enabled": True}},
    "networkPolicy": {
        "enabled": True,
        "ingressNamespaces": ["ingress-nginx", "monitoring"],
        "egressCidrs": ["0.0.0.0/0"],
    },
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "podIdentity": {
        "enabled": True,
        "roleArn": "arn:aws:iam::123456789012:role/migratebot",
        "clusterName": "prod",
    },
    "impersonation": {"enabled": True, "users": ["alice@example.com"], "groups": ["sre"]},
    "slack": {"appTokenKey": "SLACK_APP_TOKEN"},
    "aws": {"region": "us-west-2"},
    "kubeconfig": {"inClusterContext": "prod-us-west-2"},
}

IRSA: JSON = {"serviceAccount": {"irsaRoleArn": "arn:aws:iam::123456789012:role/migratebot"}}

# One replica on the embedded SQLite file, on a volume.
EMBEDDED: JSON = {"replicaCount": 1, "database": {"existingSecret": ""}, "persistence": {"enabled": True}}


@contextmanager
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render_files(values: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Template path → rendered text, as `helm template RELEASE helm/migratebot -n NAMESPACE`."""
    with chart() as c:
        return c.render(values=dict(values or {}), name=RELEASE, namespace=NAMESPACE)


def render(values: Mapping[str, Any] | None = None) -> list[JSON]:
    """Every rendered manifest (NOTES.txt excluded), parsed."""
    docs: list[JSON] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def notes(values: Mapping[str, Any] | None = None) -> str:
    return next(t for p, t in render_files(values).items() if p.endswith("NOTES.txt"))


def of_kind(docs: list[JSON], kind: str) -> list[JSON]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[JSON], kind: str) -> JSON:
    (found,) = of_kind(docs, kind)
    return found


def deployment_container(docs: list[JSON]) -> JSON:
    container: JSON = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


def env_of(container: JSON) -> dict[str, JSON]:
    return {e["name"]: e for e in container.get("env", [])}
