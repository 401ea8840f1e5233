"""preview says exactly what a wave would do — and does none of it."""

from __future__ import annotations

from pathlib import Path

from engine_world import engine_world

from bot.engine.preview import preview_wave


def test_preview_lists_objects_nodes_and_pods_and_changes_nothing(tmp_path: Path) -> None:
    with engine_world(tmp_path) as world:
        preview = preview_wave(world.plan, world.plan.waves[0], world.kube)
        kinds = {(c.verb, c.kind, c.name) for c in preview.objects}
        assert ("create", "EC2NodeClass", "bottlerocket") in kinds
        assert ("create", "NodePool", "bottlerocket-ng-web") in kinds
        assert len(preview.cordon) == 10
        on_wave = [p for n in preview.cordon for p in world.inventory().pods_on(n)]
        accounted = len(preview.evict) + len(preview.skip) + len(preview.refuse) + len(preview.hold)
        assert accounted == len(on_wave) and preview.evict
        assert all("declare no controller" in r for r in preview.refuse)
        assert not any("adhoc-backfill" in p or "fraud-scorer" in p for p in preview.evict)
        assert "managed node group ng-web: scale to 0, then delete" in preview.retire
        text = "\n".join(preview.lines())
        assert "preview, nothing changed" in text
        inventory = world.inventory()
        assert not any(n.unschedulable for n in inventory.nodes.values())
        assert [p["metadata"]["name"] for p in world.kube.list_nodepools()] == ["general-al2"]
        assert world.sandbox.controllers is not None
        assert world.sandbox.controllers.ground_truth()["evictions"] == []

        drift = preview_wave(world.plan, world.plan.waves[1], world.kube)
        assert ("patch", "NodePool", "general-al2") in {(c.verb, c.kind, c.name) for c in drift.objects}
        assert drift.cordon == ()
