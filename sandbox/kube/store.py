"""A generic in-memory object store with etcd's semantics: one global resourceVersion, watch history.

Objects are plain JSON dicts. A stored dict is never mutated after it is stored: every write builds
a new dict, so readers (list, get, watch fan-out) can hand out references without copying — the
sandbox lists 100,000 pods by reference and serializes them once with orjson.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON
from sandbox.kube.resources import Registry, ResourceType

ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

# Real apiserver: generateName gets 5 characters from this alphabet (utilrand.String, no vowels).
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def deep_copy(obj: JSON) -> JSON:
    """A JSON deep copy: orjson round-trip is several times faster than copy.deepcopy."""
    copied: JSON = orjson.loads(orjson.dumps(obj))
    return copied


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    """One change, as a watch stream delivers it; `old` lets selector-filtered watches see objects leave."""

    type: str  # ADDED | MODIFIED | DELETED
    resource: str  # ResourceType.key
    object: JSON
    old: JSON | None
    rv: int


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    callback: Callable[[Event], None]
    store: Store = field(repr=False)

    def stop(self) -> None:
        self.store._remove_watcher(self)


@dataclass
class FieldIndex:
    value_of: Callable[[JSON], str]
    values: dict[str, set[ObjKey]] = field(default_factory=dict)

    def update(self, key: ObjKey, new: JSON | None, old: JSON | None) -> None:
        if old is not None:
            bucket = self.values.get(self.value_of(old))
            if bucket is not None:
                bucket.discard(key)
        if new is not None:
            self.values.setdefault(self.value_of(new), set()).add(key)


# Admission: called under the store lock with (resource type, new object, old object or None) before a
# write; may default fields in `new` in place or raise errors.ApiError (422 Invalid…). Mirrors the
# apiserver's mutating + validating admission and strategy PrepareForCreate/Update.
Admission = Callable[[ResourceType, JSON, JSON | None], None]


class Store:
    def __init__(
        self,
        registry: Registry,
        *,
        history: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.clock = clock
        # One reentrant lock for everything: writes, watch registration and fan-out are atomic, and
        # in-process controllers can compose several operations (read PDB, delete pod) atomically.
        self.lock = threading.RLock()
        self._rv = 1
        self._objects: dict[str, dict[ObjKey, JSON]] = {}
        self._sorted: dict[str, list[ObjKey]] = {}
        self._history: deque[Event] = deque(maxlen=history)
        self._compacted_rv = 0
        self._watchers: dict[str, list[Watcher]] = {}
        self._by_uid: dict[str, tuple[str, ObjKey]] = {}
        self._dependents: dict[str, set[tuple[str, ObjKey]]] = {}
        self._admission: dict[str, list[Admission]] = {}
        self._field_indexes: dict[tuple[str, str], FieldIndex] = {}
        self._graceful: dict[str, Callable[[JSON, int | None], int]] = {}

    # ---- configuration -------------------------------------------------------------------------

    def add_admission(self, resource: str, fn: Admission) -> None:
        self._admission.setdefault(resource, []).append(fn)

    def set_graceful_deletion(self, resource: str, fn: Callable[[JSON, int | None], int] | None) -> None:
        """Graceful deletion (the kubelet's side of pod deletion): `fn(object, requested grace period)`
        returns the emulated seconds the object stays terminating (deletionTimestamp set), 0 to delete
        at once. Whoever installs it removes the object later with `delete(..., grace_period=0)`."""
        if fn is None:
            self._graceful.pop(resource, None)
        else:
            self._graceful[resource] = fn

    def add_field_index(self, resource: str, field: str, value_of: Callable[[JSON], str]) -> None:
        """Index a resource by a field value (pods by spec.nodeName: drain and describe node ask for
        one node's pods across 100,000). Must be added before objects are stored."""
        self._field_indexes[(resource, field)] = FieldIndex(value_of)

    def compacted(self, rv: int) -> bool:
        """Whether history no longer reaches back to `rv` (etcd compacted that revision)."""
        return rv < self._compacted_rv

    @property
    def resource_version(self) -> int:
        return self._rv

    # ---- reads ---------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> JSON | None:
        return self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))

    def must_get(self, rt: ResourceType, namespace: str, name: str) -> JSON:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def by_uid(self, uid: str) -> JSON | None:
        where = self._by_uid.get(uid)
        if where is None:
            return None
        return self._objects.get(where[0], {}).get(where[1])

    def dependents(self, owner_uid: str) -> list[JSON]:
        """Objects whose ownerReferences name `owner_uid` (a controller's pods), from the GC's index."""
        with self.lock:
            return [obj for _, obj in self._dependent_objects(owner_uid)]

    def count(self, rt: ResourceType) -> int:
        return len(self._objects.get(rt.key, {}))

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        predicate: Callable[[JSON], bool] | None = None,
        after: ObjKey | None = None,
        limit: int = 0,
        indexed: tuple[str, str] | None = None,
        at: int | None = None,
    ) -> tuple[list[JSON], int, ObjKey | None]:
        """Objects in etcd key order (namespace, name), from just after `after`, at most `limit`.

        Returns (items, resourceVersion, key to continue after or None). The list is a snapshot of
        references taken under the lock. `at` (a continue token's resourceVersion) lists the state
        as it was at that revision, as the apiserver continues a paginated list from the first
        page's consistent snapshot: changes since are undone from the watch history (the caller
        answers 410 when `compacted(at)`). The returned resourceVersion is then `at`.
        `indexed=(field, value)` narrows the scan through a field index (see `add_field_index`);
        `predicate` must still express the whole selection.
        """
        with self.lock:
            objects = self._objects.get(rt.key, {})
            past = self._state_at(rt.key, at) if at is not None and at < self._rv else {}
            index = self._field_indexes.get((rt.key, indexed[0])) if indexed and not past else None
            if index is not None and indexed is not None:
                keys = sorted(index.values.get(indexed[1], ()))
            else:
                keys = self._sorted_keys(rt.key)
            if past:
                gone_since = [k for k, v in past.items() if v is not None and k not in objects]
                if gone_since:
                    keys = sorted([*keys, *gone_since])
            start = 0
            if namespace:
                start = bisect.bisect_left(keys, (namespace, ""))
            if after is not None:
                start = max(start, bisect.bisect_right(keys, after))
            items: list[JSON] = []
            next_key: ObjKey | None = None
            for i in range(start, len(keys)):
                key = keys[i]
                if namespace and key[0] != namespace:
                    break
                obj = past[key] if key in past else objects[key]
                if obj is None:  # created after the snapshot
                    continue
                if predicate is not None and not predicate(obj):
                    continue
                if limit and len(items) == limit:
                    next_key = self._key_of(items[-1])
                    break
                items.append(obj)
            return items, self._rv if at is None else at, next_key

    def _state_at(self, resource: str, rv: int) -> dict[ObjKey, JSON | None]:
        """Keys of `resource` changed after `rv`, each with its object as it was at `rv` (None: it
        did not exist then)."""
        past: dict[ObjKey, JSON | None] = {}
        for event in self._events_after(rv):
            if event.resource != resource:
                continue
            key = self._key_of(event.object)
            if key not in past:
                past[key] = None if event.type == "ADDED" else event.old
        return past

    def iter_all(self, rt: ResourceType) -> Iterator[JSON]:
        """Unordered iteration for in-process controllers; hold `lock` while iterating."""
        return iter(list(self._objects.get(rt.key, {}).values()))

    def _sorted_keys(self, resource: str) -> list[ObjKey]:
        keys = self._sorted.get(resource)
        if keys is None:
            keys = sorted(self._objects.get(resource, {}))
            self._sorted[resource] = keys
        return keys

    @staticmethod
    def _key_of(obj: JSON) -> ObjKey:
        meta = obj["metadata"]
        return (meta.get("namespace", ""), meta["name"])

    # ---- writes --------------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: JSON, *, keep_status: bool = False) -> JSON:
        """POST semantics. `obj` becomes the stored object (the caller hands over ownership).

        `keep_status` (bulk loads, controllers) keeps status and a given uid and creationTimestamp.
        """
        with self.lock:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices(_GENERATE_ALPHABET, k=5))
            name = meta.get("name")
            if not name:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        errors.field_error(
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            if rt.namespaced:
                ns = meta.get("namespace") or "default"
                meta["namespace"] = ns
                if rt.key != "/namespaces" and not self._objects.get("/namespaces", {}).get(("", ns)):
                    raise errors.not_found("namespaces", "", ns)
            else:
                meta.pop("namespace", None)
            key = self._key_of(obj)
            bucket = self._objects.setdefault(rt.key, {})
            if key in bucket:
                raise errors.already_exists(rt.plural, rt.group, name)
            obj["apiVersion"] = rt.api_version
            obj["kind"] = rt.kind
            if rt.has_status and not keep_status and rt.key != "/nodes":
                # Kinds with a status subresource drop a client's status on create (their registry
                # strategies' PrepareForCreate; admission then sets pod phase Pending, namespace
                # Active). Nodes keep it: the kubelet registers a node with its status.
                obj.pop("status", None)
            for fn in self._admission.get(rt.key, ()):
                fn(rt, obj, None)
            if not (keep_status and meta.get("uid")) or meta["uid"] in self._by_uid:
                meta["uid"] = str(uuid.uuid4())
            if not (keep_status and meta.get("creationTimestamp")):
                meta["creationTimestamp"] = rfc3339(self.clock())
            meta.pop("deletionTimestamp", None)
            meta["generation"] = 1
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            bucket[key] = obj
            self._sorted.pop(rt.key, None)
            self._index(rt.key, key, obj, None)
            self._emit(Event("ADDED", rt.key, obj, None, self._rv))
            return obj

    def update(self, rt: ResourceType, obj: JSON, *, subresource: str = "", force: bool = False) -> JSON:
        """PUT semantics; `subresource="status"` changes only status, "" everything but status.

        A non-empty metadata.resourceVersion must match the stored one (optimistic concurrency):
        409 Conflict otherwise. `force` is for in-process controllers that already hold the lock.
        """
        with self.lock:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "") if rt.namespaced else ""
            name = meta.get("name", "")
            old = self.must_get(rt, ns, name)
            old_meta = old["metadata"]
            rv = meta.get("resourceVersion")
            if rv and rv != old_meta["resourceVersion"] and not force:
                raise errors.conflict(rt.plural, rt.group, name)
            if subresource == "status":
                # The status subresource ignores everything but status (registry StatusStrategy).
                new = dict(old)
                new["metadata"] = dict(old_meta)
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                new = obj
                new["apiVersion"] = rt.api_version
                new["kind"] = rt.kind
                if rt.has_status:
                    # The main resource ignores status changes when a status subresource exists.
                    if "status" in old:
                        new["status"] = old["status"]
                    else:
                        new.pop("status", None)
                # Fields the server owns: a client cannot change them through update.
                for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                    if owned in old_meta:
                        meta[owned] = old_meta[owned]
                    else:
                        meta.pop(owned, None)
                if rt.namespaced:
                    meta["namespace"] = ns
                for fn in self._admission.get(rt.key, ()):
                    fn(rt, new, old)
            new_meta = new["metadata"]
            if self._spec_of(new) != self._spec_of(old):
                new_meta["generation"] = old_meta.get("generation", 1) + 1
            else:
                new_meta["generation"] = old_meta.get("generation", 1)
            if self._same(new, old):
                # A no-op update writes nothing and keeps the resourceVersion (as the apiserver does).
                return old
            self._rv += 1
            new_meta["resourceVersion"] = str(self._rv)
            key = (ns, name)
            if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
                # The last finalizer was removed from an object being deleted: it goes away now.
                self._remove(rt, key, new)
                return new
            self._objects[rt.key][key] = new
            self._index(rt.key, key, new, old)
            self._emit(Event("MODIFIED", rt.key, new, old, self._rv))
            return new

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        grace_period: int | None = None,
    ) -> tuple[JSON, bool]:
        """DELETE semantics; returns (object, gone). With finalizers the object stays, marked deleted."""
        with self.lock:
            ns = namespace if rt.namespaced else ""
            obj = self.must_get(rt, ns, name)
            meta = obj["metadata"]
            if uid and uid != meta["uid"]:
                raise errors.ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {errors.qualified(rt.plural, rt.group)} "{name}": '
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}",
                )
            if resource_version and resource_version != meta["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            if propagation == "Orphan":
                self._orphan_dependents(meta["uid"])
            elif propagation == "Foreground":
                # The real GC deletes dependents first behind a foregroundDeletion finalizer; done
                # synchronously here, so the owner is gone when the call returns.
                self._delete_dependents(meta["uid"])
            graceful = self._graceful.get(rt.key)
            if graceful is not None and grace_period != 0:
                if meta.get("deletionTimestamp"):
                    return obj, False
                seconds = graceful(obj, grace_period)
                if seconds > 0:
                    new = dict(obj)
                    new["metadata"] = dict(
                        meta,
                        deletionTimestamp=rfc3339(self.clock() + seconds),
                        deletionGracePeriodSeconds=seconds,
                    )
                    self._rv += 1
                    new["metadata"]["resourceVersion"] = str(self._rv)
                    self._objects[rt.key][(ns, name)] = new
                    self._emit(Event("MODIFIED", rt.key, new, obj, self._rv))
                    return new, False
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return obj, False
                new = dict(obj)
                new["metadata"] = dict(
                    meta, deletionTimestamp=rfc3339(self.clock()), deletionGracePeriodSeconds=0
                )
                self._rv += 1
                new["metadata"]["resourceVersion"] = str(self._rv)
                self._objects[rt.key][(ns, name)] = new
                self._emit(Event("MODIFIED", rt.key, new, obj, self._rv))
                return new, False
            self._rv += 1
            gone = dict(obj)
            gone["metadata"] = dict(meta, resourceVersion=str(self._rv))
            self._remove(rt, (ns, name), gone)
            if propagation != "Orphan":
                self._delete_dependents(meta["uid"])
            return gone, True

    def _remove(self, rt: ResourceType, key: ObjKey, final: JSON) -> None:
        bucket = self._objects[rt.key]
        old = bucket.pop(key)
        self._sorted.pop(rt.key, None)
        self._unindex(rt.key, old)
        self._emit(Event("DELETED", rt.key, final, old, int(final["metadata"]["resourceVersion"])))
        if rt.key == "/namespaces":
            # Namespace deletion removes its contents (the namespace controller's job, done at once).
            for other in self.registry.all():
                if other.namespaced and other.key in self._objects:
                    for obj_key in [k for k in self._objects[other.key] if k[0] == key[1]]:
                        if obj_key in self._objects[other.key]:
                            self.delete(other, obj_key[0], obj_key[1])

    # ---- garbage collection (ownerReferences) --------------------------------------------------

    def _index(self, resource: str, key: ObjKey, new: JSON, old: JSON | None) -> None:
        for (indexed_resource, _), index in self._field_indexes.items():
            if indexed_resource == resource:
                index.update(key, new, old)
        self._by_uid[new["metadata"]["uid"]] = (resource, key)
        if old is not None:
            for ref in old["metadata"].get("ownerReferences", ()):
                self._dependents.get(ref.get("uid", ""), set()).discard((resource, key))
        for ref in new["metadata"].get("ownerReferences", ()):
            self._dependents.setdefault(ref.get("uid", ""), set()).add((resource, key))

    def _unindex(self, resource: str, obj: JSON) -> None:
        meta = obj["metadata"]
        key = self._key_of(obj)
        for (indexed_resource, _), index in self._field_indexes.items():
            if indexed_resource == resource:
                index.update(key, None, obj)
        where = self._by_uid.pop(meta["uid"], None)
        if where is not None:
            for ref in meta.get("ownerReferences", ()):
                self._dependents.get(ref.get("uid", ""), set()).discard(where)

    def _dependent_objects(self, owner_uid: str) -> list[tuple[ResourceType, JSON]]:
        out = []
        for resource, key in sorted(self._dependents.get(owner_uid, ())):
            obj = self._objects.get(resource, {}).get(key)
            rt = self._type_of(resource)
            if obj is not None and rt is not None:
                out.append((rt, obj))
        return out

    def _type_of(self, resource: str) -> ResourceType | None:
        for rt in self.registry.all():
            if rt.key == resource:
                return rt
        return None

    def _delete_dependents(self, owner_uid: str) -> None:
        for rt, dep in self._dependent_objects(owner_uid):
            meta = dep["metadata"]
            live_owners = [
                r
                for r in meta.get("ownerReferences", ())
                if r.get("uid") != owner_uid and r.get("uid") in self._by_uid
            ]
            if live_owners:
                continue
            if self.get(rt, meta.get("namespace", ""), meta["name"]) is not None:
                self.delete(rt, meta.get("namespace", ""), meta["name"], propagation="Background")
        self._dependents.pop(owner_uid, None)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for rt, dep in self._dependent_objects(owner_uid):
            new = deep_copy(dep)
            new["metadata"]["ownerReferences"] = [
                r for r in new["metadata"].get("ownerReferences", ()) if r.get("uid") != owner_uid
            ]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self.update(rt, new, force=True)

    # ---- watch ---------------------------------------------------------------------------------

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        since: int | None,
        callback: Callable[[Event], None],
    ) -> tuple[Watcher, list[Event]]:
        """Register a watcher; returns it with the events to replay first.

        since=None: every current object as ADDED (the apiserver's "get state and start at most
        recent"); since=N: history events after N, or 410 Expired when N has been compacted away.
        Registration and replay happen under the lock, so no event is lost or doubled.
        """
        with self.lock:
            if since is None:
                items, _, _ = self.list_objects(rt, namespace)
                initial = [
                    Event("ADDED", rt.key, o, None, int(o["metadata"]["resourceVersion"])) for o in items
                ]
            else:
                if self.compacted(since):
                    oldest = self._history[0].rv if self._history else self._rv
                    raise errors.gone(f"too old resource version: {since} ({oldest})")
                initial = [
                    e
                    for e in self._events_after(since)
                    if e.resource == rt.key
                    and (not namespace or e.object["metadata"].get("namespace") == namespace)
                ]
            w = Watcher(rt.key, namespace or None, callback, self)
            self._watchers.setdefault(rt.key, []).append(w)
            return w, initial

    def subscribe(self, rt: ResourceType, callback: Callable[[Event], None]) -> Watcher:
        """For in-process controllers: every future change of this resource, called under the lock
        (keep the callback short — enqueue and return)."""
        with self.lock:
            w = Watcher(rt.key, None, callback, self)
            self._watchers.setdefault(rt.key, []).append(w)
            return w

    def _events_after(self, since: int) -> list[Event]:
        history = self._history
        if not history or history[-1].rv <= since:
            return []
        # Events are appended in rv order; binary search on the deque through an index view.
        lo, hi = 0, len(history)
        while lo < hi:
            mid = (lo + hi) // 2
            if history[mid].rv <= since:
                lo = mid + 1
            else:
                hi = mid
        return [history[i] for i in range(lo, len(history))]

    def _remove_watcher(self, w: Watcher) -> None:
        with self.lock:
            watchers = self._watchers.get(w.resource, [])
            if w in watchers:
                watchers.remove(w)

    def _emit(self, event: Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        ns = event.object["metadata"].get("namespace")
        for w in list(self._watchers.get(event.resource, ())):
            if w.namespace is None or w.namespace == ns:
                w.callback(event)

    # ---- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _spec_of(obj: JSON) -> JSON:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}

    @staticmethod
    def _same(new: JSON, old: JSON) -> bool:
        a = dict(new, metadata={k: v for k, v in new["metadata"].items() if k != "resourceVersion"})
        b = dict(old, metadata={k: v for k, v in old["metadata"].items() if k != "resourceVersion"})
        return a == b
