"""Model versions, the `champion` alias and the promotion history.

Every decision that two processes could race on is a compare-and-swap on
storage: a version is claimed by creating its claim object only if absent,
and the alias moves only if it still is what the mover read. The history is
append-only and numbered by the alias's own promotion sequence, so its order
is the order in which the alias actually moved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops_assets.errors import MlopsError
from mlops_assets.storage import Layout, ObjectStorage

METADATA = "metadata.json"
STATUS = "status.json"
"""Beside a version's metadata (which is immutable, and pinned by its sha256 in git)."""
CLAIM = "claim.json"
KEPT = ("hold", "not_promoted")
"""History entries that record a decision which left the alias where it was."""


class ArtifactIntegrityError(MlopsError, RuntimeError):
    """The stored artifact's bytes do not match the sha256 recorded at release."""


class UnknownVersionError(MlopsError, LookupError):
    """No released version with that number."""


@dataclass(frozen=True)
class ReleaseResult:
    version: int
    sha256: str
    promoted: bool
    reason: str
    """Why it was or was not promoted, in a sentence."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ModelRegistry:
    """The registry of one use case, on any `ObjectStorage`."""

    def __init__(self, storage: ObjectStorage, use_case: str) -> None:
        self.storage = storage
        self.layout = Layout(use_case)
        self.use_case = use_case

    # -- reading ---------------------------------------------------------------------------

    def _numbers(self, require: str) -> list[int]:
        prefix = self.layout.model()
        numbers = set()
        for info in self.storage.list(prefix):
            parts = info.key[len(prefix) + 1 :].split("/")
            if len(parts) == 2 and parts[0].isdigit() and parts[1] == require:
                numbers.add(int(parts[0]))
        return sorted(numbers)

    def versions(self) -> list[int]:
        """Released versions, ascending. A claimed version with no metadata is not released."""
        return self._numbers(METADATA)

    def metadata(self, version: int) -> dict[str, Any]:
        try:
            return self.storage.read_json(self.layout.model(version, METADATA))
        except FileNotFoundError:
            raise UnknownVersionError(
                f"{self.use_case} has no released model version {version} "
                f"(released: {self.versions() or 'none'})"
            ) from None

    def metadata_sha256(self, version: int) -> str:
        """The sha256 of the stored `metadata.json` bytes, as deploy writes it to git."""
        try:
            data = self.storage.read_bytes(self.layout.model(version, METADATA))
        except FileNotFoundError:
            self.metadata(version)  # raises the registry's clear error for an unknown version
            raise
        return hashlib.sha256(data).hexdigest()

    def artifact(self, version: int) -> tuple[bytes, dict[str, Any]]:
        """The artifact's bytes, verified against the sha256 recorded at release."""
        meta = self.metadata(version)
        key = self.layout.model(version, meta["artifact"])
        data = self.storage.read_bytes(key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != meta["artifact_sha256"]:
            raise ArtifactIntegrityError(
                f"{self.use_case} model version {version}: artifact {self.storage.uri(key)} has "
                f"sha256 {actual}, but {meta['artifact_sha256']} was recorded at release; "
                "refusing to use it"
            )
        return data, meta

    def champion(self) -> dict[str, Any] | None:
        found = self.storage.read_versioned(self.layout.champion_alias)
        return json.loads(found[0]) if found else None

    def history(self) -> list[dict[str, Any]]:
        prefix = self.layout.history_entry()
        keys = sorted(i.key for i in self.storage.list(prefix) if i.key.endswith(".json"))
        entries = [self.storage.read_json(k) for k in keys]
        # holds and releases the alias did not follow share the sequence of the alias they
        # left in place: after its move, in time order
        return sorted(
            entries,
            key=lambda e: (
                e["sequence"],
                e["action"] in KEPT,
                e.get("at") or e["promoted_at"],
            ),
        )

    # -- writing ---------------------------------------------------------------------------

    def claim_version(self, run_id: str = "") -> int:
        """A new version number, unique and above every claimed one, also under races."""
        version = max(self._numbers(CLAIM), default=0) + 1
        while not self.storage.write_json(
            self.layout.model(version, CLAIM),
            {"claimed_at": _now(), "run_id": run_id},
            if_absent=True,
        ):
            version += 1
        return version

    def release(
        self,
        artifact: bytes,
        artifact_name: str,
        metadata: dict[str, Any],
        *,
        beaten_champion: int | None,
        run_id: str = "",
    ) -> ReleaseResult:
        """Store a new version and make it champion if the champion it beat is still champion.

        The version becomes visible only when its metadata is written, after the artifact,
        so a failure part-way leaves no half-released version.
        """
        digest = hashlib.sha256(artifact).hexdigest()
        earlier = self.released_as(metadata.get("candidate_id"), digest)
        if earlier is not None:  # a retry after a failure between metadata and alias
            champion = self.champion()
            if champion and champion["version"] == earlier:
                return ReleaseResult(
                    version=earlier,
                    sha256=digest,
                    promoted=True,
                    reason=f"v{earlier} was released and promoted by an earlier attempt",
                )
            promoted, reason = self._move_alias(
                earlier,
                digest,
                "released after passing the gate",
                run_id,
                expect=beaten_champion,
                respect_pin=True,
            )
            if not promoted:
                self._note_not_promoted(earlier, digest, beaten_champion, reason, run_id)
            return ReleaseResult(
                version=earlier,
                sha256=digest,
                promoted=promoted,
                reason=f"{reason} (v{earlier} was released by an earlier attempt)",
            )
        version = self.claim_version(run_id)
        self.storage.write_bytes(self.layout.model(version, artifact_name), artifact)
        record = {
            **metadata,
            "use_case": self.use_case,
            "model_version": version,
            "artifact": artifact_name,
            "artifact_sha256": digest,
            "artifact_uri": self.storage.portable_uri(self.layout.model(version, artifact_name)),
            "dagster_run_id": run_id,
            "created_at": _now(),
        }
        self.storage.write_json(self.layout.model(version, METADATA), record)
        promoted, reason = self._move_alias(
            version,
            digest,
            "released after passing the gate",
            run_id,
            expect=beaten_champion,
            respect_pin=True,
        )
        if not promoted:
            self._note_not_promoted(version, digest, beaten_champion, reason, run_id)
        return ReleaseResult(version=version, sha256=digest, promoted=promoted, reason=reason)

    def _note_not_promoted(
        self, version: int, digest: str, beaten: int | None, reason: str, run_id: str
    ) -> None:
        """Record that `version` passed the gate against `beaten` and was released, but the
        alias stayed (a pin, a champion that moved meanwhile): what `unpin` looks for, and
        what `registry history` shows. Once per version: a retried release writes the same."""
        current = self.champion() or {"version": None, "sequence": 0}
        entry = {
            "action": "not_promoted",
            "version": version,
            "artifact_sha256": digest,
            "beat_champion": beaten,
            "champion": current["version"],
            "sequence": current["sequence"],
            "reason": f"released, {reason}",
            "run_id": run_id,
            "at": _now(),
        }
        name = f"{current['sequence']:08d}-not-promoted-v{version}.json"
        self.storage.write_json(self.layout.history_entry(name), entry, if_absent=True)

    def released_as(self, candidate_id: str | None, digest: str | None = None) -> int | None:
        """The version this candidate was released as, if it was (with `digest`, only as that
        artifact): re-executing a release that failed after writing the version must not
        release it twice, and the gate sensor does not start a released one again."""
        if not candidate_id:
            return None
        for version in reversed(self.versions()):
            meta = self.metadata(version)
            if meta.get("candidate_id") == candidate_id and digest in (
                None,
                meta["artifact_sha256"],
            ):
                return version
        return None

    def promote(self, version: int, reason: str, *, pin: bool = False, run_id: str = "") -> dict:
        """Make an existing version champion by hand (rollback), optionally pinned."""
        _, meta = self.artifact(version)  # must exist and pass its sha256 check
        promoted, why = self._move_alias(
            version,
            meta["artifact_sha256"],
            reason,
            run_id,
            expect=None,
            respect_pin=False,
            pin=pin,
            action="rollback" if pin else "promote",
        )
        if not promoted:
            raise RuntimeError(why)
        return self.champion() or {}

    def unpin(self, reason: str, run_id: str = "") -> tuple[dict, str]:
        """Unpin the champion, then promote the newest version released while the pin held
        that passed the gate against this very champion (and was not rolled back since):
        (the alias now, what happened in a sentence). A version that beat another champion
        stays where it is: its gate did not compare it with this one."""
        while True:
            found = self.storage.read_versioned(self.layout.champion_alias)
            if not found:
                raise RuntimeError(f"{self.use_case} has no champion to unpin")
            current, token = json.loads(found[0]), found[1]
            if not current.get("pinned"):
                return current, f"v{current['version']} was not pinned"
            alias = {
                **current,
                "pinned": False,
                "pin_reason": "",
                "sequence": current["sequence"] + 1,
            }
            if self.storage.replace_if(self.layout.champion_alias, _dump(alias), token):
                self._append_history(alias, "unpin", reason, run_id)
                break
        unpinned = f"v{alias['version']} is no longer pinned"
        waiting = self.held_back(alias["version"])
        if not waiting:
            return alias, f"{unpinned}; no release waited for it"
        entry = waiting[-1]
        _, meta = self.artifact(entry["version"])  # must exist and pass its sha256 check
        if meta["artifact_sha256"] != entry["artifact_sha256"]:  # the entry's own claim
            return alias, (
                f"{unpinned}; v{entry['version']} not promoted: its history entry names "
                "another artifact than the version's metadata"
            )
        promoted, why = self._move_alias(
            entry["version"],
            meta["artifact_sha256"],
            f"promoted on unpin: it passed the gate against v{alias['version']} and was "
            f"released while v{alias['version']} was pinned",
            run_id,
            expect=alias["version"],
            respect_pin=True,
        )
        return self.champion() or alias, f"{unpinned}; {why}"

    def held_back(self, champion: int) -> list[dict[str, Any]]:
        """The released versions that beat `champion` at the gate but were not promoted,
        oldest first, leaving out any rolled back since."""
        entries = [
            e
            for e in self.history()
            if e["action"] == "not_promoted"
            and e.get("beat_champion") == champion
            and e["version"] != champion
            and self.status(e["version"]).get("status") != "rolled_back"
        ]
        return sorted(entries, key=lambda e: e["version"])

    def _move_alias(
        self,
        version: int,
        digest: str,
        reason: str,
        run_id: str,
        *,
        expect: int | None,
        respect_pin: bool,
        pin: bool = False,
        action: str = "release",
        allow_rolled_back: bool = False,
    ) -> tuple[bool, str]:
        if (
            respect_pin
            and not allow_rolled_back
            and self.status(version).get("status") == "rolled_back"
        ):
            return (
                False,
                f"not promoted: v{version} was rolled back ({self.status(version)['reason']})",
            )
        while True:
            found = self.storage.read_versioned(self.layout.champion_alias)
            current, token = (json.loads(found[0]), found[1]) if found else (None, None)
            current_version = current["version"] if current else None
            if respect_pin and current and current.get("pinned"):
                return False, (
                    f"not promoted: champion v{current_version} is pinned "
                    f"({current.get('pin_reason') or 'no reason given'})"
                )
            if respect_pin and current_version != expect:
                return False, (
                    f"not promoted: the gate compared against "
                    f"{'no champion' if expect is None else f'v{expect}'}, but the champion is now "
                    f"v{current_version}; validate again"
                )
            alias = {
                "version": version,
                "artifact_sha256": digest,
                "sequence": (current["sequence"] + 1) if current else 1,
                "promoted_at": _now(),
                "previous": current_version,
                "reason": reason,
                "pinned": pin,
                "pin_reason": reason if pin else "",
                "run_id": run_id,
            }
            if self.storage.replace_if(self.layout.champion_alias, _dump(alias), token):
                self._append_history(alias, action, reason, run_id)
                return True, (
                    f"promoted v{version} to champion"
                    + (f" (was v{current_version})" if current_version else " (first champion)")
                )

    def status(self, version: int) -> dict[str, Any]:
        """What happened to a version after its release (`rolled_back`), or {}."""
        return self.storage.read_json(self.layout.model(version, STATUS), default={}) or {}

    def roll_back(self, version: int, to: int, reason: str, run_id: str = "") -> tuple[bool, str]:
        """Move the champion from `version` back to `to` by compare-and-swap (only while
        `version` is champion and not pinned), then mark `version` rolled back: (True, what
        happened), or (False, why not) with nothing changed. Idempotent: a re-executed
        rollback finds its own work done. No pin is set: `version` is kept out by its status,
        not by a pin, so later candidates still go through the gate."""
        _, meta = self.artifact(to)  # must exist and pass its sha256 check
        status = self.status(version)
        champion = self.champion() or {}
        if (
            status.get("status") == "rolled_back"
            and status.get("to") == to
            and champion.get("version") == to
        ):
            return True, f"v{version} was rolled back to v{to} already"
        moved, why = self._move_alias(
            to,
            meta["artifact_sha256"],
            reason,
            run_id,
            expect=version,
            respect_pin=True,
            action="rollback",
            allow_rolled_back=True,
        )
        if not moved:
            return False, why
        self.storage.write_json(
            self.layout.model(version, STATUS),
            {"status": "rolled_back", "to": to, "reason": reason, "run_id": run_id, "at": _now()},
            if_absent=True,
        )
        return True, f"rolled back v{version} to v{to}"

    def note_hold(self, reason: str, candidate_id: str, run_id: str = "") -> None:
        """Record in the history that the gate held a candidate and the champion stayed
        (once per candidate: a re-executed release writes the same entry)."""
        current = self.champion() or {"version": None, "sequence": 0, "previous": None}
        entry = {
            **current,
            "action": "hold",
            "candidate_id": candidate_id,
            "reason": reason,
            "run_id": run_id,
            "at": _now(),
        }
        name = f"{current['sequence']:08d}-hold-{candidate_id}.json"
        self.storage.write_json(self.layout.history_entry(name), entry, if_absent=True)

    def _append_history(self, alias: dict, action: str, reason: str, run_id: str) -> None:
        at = _now()
        entry = {**alias, "action": action, "reason": reason, "run_id": run_id, "at": at}
        stamp = at.replace(":", "")
        name = f"{alias['sequence']:08d}-{stamp}-v{alias['version']}.json"
        self.storage.write_json(self.layout.history_entry(name), entry, if_absent=True)


def _dump(value: dict) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()
