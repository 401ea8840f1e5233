"""Readiness + security reports for one wave of the `scale` scenario vs `kubectl get pods -A -o json`.

    .venv/bin/python -m bench.reports_scale [--wave-groups ng-00] [--skip-kubectl]

Starts `Sandbox("scale")` (5,000 nodes backed by 5,000 moto EC2 instances, 100,000 pods), writes a
plan whose wave 1 is the managed node groups given (default ng-00: 500 nodes, ~10,000 pods), then
runs, each in its own process so each peak RSS is its own: migratebot's `wave_reports` (one gathering
of the cluster — nodes, pods, ReplicaSets, DaemonSets, Deployments, StatefulSets, PDBs, NodePools,
EC2NodeClasses — with the EC2, IAM and Inspector2 reads for the wave's instances started as soon as
the nodes are listed; then the readiness verdict and the security table) and kubectl.
Targets (issue 7): < 10 s and < 1 GB. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _hwm_mb(pid: int) -> float:
    """A process's peak RSS so far (VmHWM), from /proc: a child's ru_maxrss would also count the
    pages it inherited from this (GB-sized) process between fork and exec."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall seconds, the child's peak RSS (MB, sampled), the head of its stdout (kubectl prints GBs)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _hwm_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = b""
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        if len(out) < (1 << 16):
            out += chunk
    proc.wait()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode})")
    return time.monotonic() - started, peak, out


def _child(kubeconfig: str, plan_file: str) -> int:
    from bot.plan import load_plan
    from bot.services.reports import open_adapters, wave_reports

    plan = load_plan(Path(plan_file))
    started = time.monotonic()
    kube, aws = open_adapters(plan.clusters[0], kubeconfig)
    readiness, security = wave_reports(plan, 1, kube, aws)
    done = time.monotonic()
    peak_at_figure = _hwm_mb(os.getpid())
    # Where the time goes, measured after the figure (it does not change it): the cluster gathered
    # alone (every list, pods included), and the security report alone (nodes, then the AWS reads).
    import datetime as dt

    from bot.reports.facts import gather_cluster
    from bot.services.reports import security_report

    t = time.monotonic()
    gather_cluster(kube, now=dt.datetime.now(dt.UTC), pods=True)
    gather_alone = time.monotonic() - t
    t = time.monotonic()
    security_report(plan, 1, kube, aws)
    security_alone = time.monotonic() - t
    print(
        json.dumps(
            {
                "seconds": done - started,
                "wave_nodes": len(readiness.nodes),
                "wave_pods": readiness.pod_count,
                "verdict": readiness.verdict.value,
                "reasons": len(readiness.reasons),
                "al2_instances": security.al2.instances,
                "imds_v1": security.al2.imds_v1,
                "unknown": dict(security.unknown),
                "rss_mb": peak_at_figure,
                "cluster_gather_alone_s": gather_alone,
                "security_report_alone_s": security_alone,
            }
        )
    )
    return 0


def _plan(directory: Path, groups: list[str]) -> Path:
    data = yaml.safe_load((ROOT / "examples" / "plan.yaml").read_text())
    data["clusters"] = [{"name": "sandbox-scale", "region": "us-west-2", "kube_context": "sandbox-scale"}]
    data["target"]["ec2nodeclass"]["role"] = "KarpenterNodeRole-sandbox-scale"
    data["waves"] = [
        {"name": "first-groups", "selector": {"managed_node_groups": groups}, "strategy": "drain"}
    ]
    data["impersonation"] = {}
    path = directory / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wave-groups", default="ng-00", help="comma-separated node groups of wave 1")
    parser.add_argument("--skip-kubectl", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(*args.child)
    kubectl = shutil.which("kubectl")
    if kubectl is None and not args.skip_kubectl:
        raise SystemExit("kubectl is not on PATH: this benchmark compares against it")

    from bench.results import Recorder, compared
    from sandbox.main import Sandbox

    recorder = Recorder("reports_scale")
    started = time.monotonic()
    with Sandbox("scale") as sb, tempfile.TemporaryDirectory() as tmp:
        assert sb.aws is not None
        startup = time.monotonic() - started
        print(f"scale sandbox up in {startup:.1f} s ({sb.startup_seconds})", flush=True)
        plan = _plan(Path(tmp), args.wave_groups.split(","))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MIGRATEBOT_"))},
            **sb.aws.client_env(),
        }
        secs, _sampled, out = _run(
            [sys.executable, "-m", "bench.reports_scale", "--child", str(sb.kubeconfig), str(plan)], env
        )
        report = json.loads(out)
        # VmHWM when the reports were done: the breakdown measured after them is not in the figure.
        peak = report["rss_mb"]
        print(
            f"reports (wave of {report['wave_nodes']} nodes / {report['wave_pods']} pods; one gathering, AWS "
            f"reads overlapping the pod list): {report['seconds']:.2f} s, child process wall {secs:.2f} s, "
            f"peak RSS {peak:.0f} MB"
        )
        print(
            f"  verdict {report['verdict']}, {report['reasons']} reasons; security: "
            f"{report['al2_instances']} AL2 instances, IMDSv1 {report['imds_v1']}; unknown "
            f"{report['unknown']}"
        )
        print(
            f"  after it, alone: the cluster gathered {report['cluster_gather_alone_s']:.2f} s, the security "
            f"report (nodes, then AWS) {report['security_report_alone_s']:.2f} s"
        )
        ksecs = krss = None
        if not args.skip_kubectl:
            assert kubectl is not None
            kenv = {"HOME": str(sb.kubeconfig.parent), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            ksecs, krss, _ = _run(
                [kubectl, "--kubeconfig", str(sb.kubeconfig), "get", "pods", "-A", "-o", "json"], kenv
            )
            print(f"kubectl get pods -A -o json: {ksecs:.2f} s, peak RSS {krss:.0f} MB")
            print(f"ratio reports / kubectl: {report['seconds'] / ksecs:.2f} time, {peak / krss:.2f} memory")
        print(f"targets: < 10 s {'met' if report['seconds'] < 10 else 'MISSED'}, "
              f"< 1 GB {'met' if peak < 1024 else 'MISSED'}")  # fmt: skip
    scope = (
        f"wave of {report['wave_nodes']:,} nodes / {report['wave_pods']:,} pods in the `scale` sandbox "
        f"(started in {startup:.0f} s); verdict {report['verdict']}, {report['reasons']} reasons; "
        f"{report['al2_instances']} AL2 instances in the security table. "
        f"After the figure, for where the time goes: the cluster gathered alone (every list, pods "
        f"included) {report['cluster_gather_alone_s']:.1f} s, the security report alone (nodes, then "
        f"the AWS reads) {report['security_report_alone_s']:.1f} s"
    )
    kubectl_name = "`kubectl get pods -A -o json`, same sandbox"
    recorder.emit(
        [
            compared(
                "reports_scale.time",
                "readiness + security reports for one wave (time)",
                report["seconds"],
                "s",
                kubectl_name if ksecs is not None else None,
                ksecs,
                limit=10,
                notes=scope,
            ),
            compared(
                "reports_scale.peak_rss",
                "readiness + security reports for one wave (peak RSS)",
                peak,
                "MB",
                kubectl_name + " (peak RSS)" if krss is not None else None,
                krss,
                limit=1024,
            ),
        ],
        {"report": report, "kubectl_s": ksecs, "kubectl_rss_mb": krss, "startup_s": startup},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
