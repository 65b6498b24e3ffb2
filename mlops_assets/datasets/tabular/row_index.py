"""The duplicate index: where each distinct clean row was first seen, in a few objects.

Exact-duplicate detection needs, for every row hash ever kept, where it was kept
(batch, row number, file). That lives in `staged/<uc>/_row_index/`: a small head
(`head.json`) naming a sorted *base* part and at most one sorted *delta* part
(`parts/<sha256>.parquet`, named for their content, so a retried write is the
same object). A clean run reads the head and the parts once, looks its rows up
in memory (binary search on sorted arrays). A commit reads the head and the delta,
writes the delta grown by the rows it keeps (or, once the delta would outgrow the
base, a new base and an empty delta) and swaps the head to name them
(compare-and-swap). A writer that loses the swap reads the parts it has not seen,
gives up its rows another run kept meanwhile, and tries again, so two cleans at
once never both keep a row. Looking up costs three requests (head, base, delta), a
commit five (head, delta, the new delta, the swap, one delete; two more when it
folds), whatever the history.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.errors import MlopsError
from mlops_assets.storage import Layout, ObjectStorage

FORMAT = 1
FOLD_INTO_BASE = 1.0
"""The delta is folded into the base when it would hold more rows than the base times
this: a commit reads two parts and writes one, never more than the history's size."""

KEY = np.dtype([("hi", ">u8"), ("lo", ">u4")])
"""A row's 12-byte content hash as two sortable numbers."""


class RowIndexError(MlopsError, RuntimeError):
    """The index's head names parts that cannot be read (a torn or foreign write)."""


Location = tuple[str, int, str]
"""Where a row was first seen: batch id, row number in its file (1-based), file name."""


def hash_keys(hashes: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """The hex content hashes of `rows.row_hashes` as (hi, lo) arrays, in one conversion."""
    text = "".join(hashes)
    raw = np.frombuffer(bytes.fromhex(text), dtype=KEY) if text else np.empty(0, KEY)
    return raw["hi"].astype(np.uint64), raw["lo"].astype(np.uint32)


@dataclass
class Part:
    """Sorted rows of the index: hash (hi, lo), batch (a code into `batches`), row."""

    hi: np.ndarray
    lo: np.ndarray
    batch: np.ndarray
    row: np.ndarray
    batches: list[tuple[str, str]]
    """(batch id, file) per batch code."""

    def __len__(self) -> int:
        return int(self.hi.size)

    @classmethod
    def empty(cls) -> Part:
        return cls(
            np.empty(0, np.uint64),
            np.empty(0, np.uint32),
            np.empty(0, np.int32),
            np.empty(0, np.int64),
            [],
        )

    @classmethod
    def of(cls, hi, lo, batch_ids: list[str], files: list[str], rows) -> Part:
        """A part from unsorted rows (per row: its batch id and file)."""
        claims = Claims()
        rows = np.asarray(rows, np.int64)
        hi, lo = np.asarray(hi, np.uint64), np.asarray(lo, np.uint32)
        pairs = np.array([f"{b}\0{f}" for b, f in zip(batch_ids, files, strict=True)], object)
        for pair in dict.fromkeys(pairs.tolist()):
            at = pairs == pair
            batch_id, file = pair.split("\0", 1)
            claims.add(hi[at], lo[at], batch_id, file, rows[at])
        return claims.part()

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Per query key, its position here, or -1."""
        at = np.searchsorted(self.hi, hi, side="left")
        found = np.full(hi.size, -1, np.int64)
        if not len(self):
            return found
        inside = at < len(self)
        hit = np.zeros(hi.size, bool)
        hit[inside] = (self.hi[at[inside]] == hi[inside]) & (self.lo[at[inside]] == lo[inside])
        found[hit] = at[hit]
        # two hashes sharing their first 8 bytes (about never): look along the run of equals
        for i in np.flatnonzero(inside & ~hit & (self.hi[np.minimum(at, len(self) - 1)] == hi)):
            j = at[i]
            while j < len(self) and self.hi[j] == hi[i]:
                if self.lo[j] == lo[i]:
                    found[i] = j
                    break
                j += 1
        return found

    def subset(self, keep: np.ndarray) -> Part:
        """The rows where `keep` is set (still sorted)."""
        return Part(self.hi[keep], self.lo[keep], self.batch[keep], self.row[keep], self.batches)

    def location(self, at: int) -> Location:
        batch_id, file = self.batches[int(self.batch[at])]
        return batch_id, int(self.row[at]), file

    def write(self, where, of: str = "") -> None:
        """As Parquet to a path or buffer; `of`: the base an empty delta belongs to (so each
        has its own key)."""
        table = pa.table(
            {"hi": self.hi, "lo": self.lo, "batch": self.batch, "row": self.row},
            metadata={"batches": json.dumps(self.batches), "of": of},
        )
        # the hashes are random bytes: compression would only cost time
        pq.write_table(
            table, where, compression={"hi": "none", "lo": "none", "batch": "zstd", "row": "zstd"}
        )

    def to_bytes(self, of: str = "") -> bytes:
        buffer = BytesIO()
        self.write(buffer, of)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Part:
        return cls.read(BytesIO(data))

    @classmethod
    def read(cls, source) -> Part:
        """From Parquet at a path or in a buffer."""
        table = pq.read_table(source)
        batches = json.loads(table.schema.metadata[b"batches"])
        return cls(
            table["hi"].to_numpy(),
            table["lo"].to_numpy(),
            table["batch"].to_numpy(),
            table["row"].to_numpy(),
            [tuple(b) for b in batches],
        )


def merge(parts: list[Part]) -> Part:
    """One sorted part holding the rows of `parts` (each row is in one of them only)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return Part.empty()
    names = list(dict.fromkeys(name for p in parts for name in p.batches))
    code = {name: i for i, name in enumerate(names)}
    batch = np.concatenate(
        [np.array([code[n] for n in p.batches], np.int32)[p.batch] for p in parts]
    )
    hi = np.concatenate([p.hi for p in parts])
    lo = np.concatenate([p.lo for p in parts])
    order = np.lexsort((lo, hi))
    row = np.concatenate([p.row for p in parts])
    return Part(hi[order], lo[order], batch[order], row[order], names)


class Claims:
    """Rows a clean run wants to keep: their keys and where they are."""

    def __init__(self) -> None:
        self.hi: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.names: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return sum(a.size for a in self.hi)

    def add(self, hi, lo, batch_id: str, file: str, rows) -> None:
        """Rows of one batch: their keys and row numbers."""
        rows = np.asarray(rows, np.int64)
        if (batch_id, file) not in self.names:
            self.names.append((batch_id, file))
        self.hi.append(np.asarray(hi, np.uint64))
        self.lo.append(np.asarray(lo, np.uint32))
        self.rows.append(rows)
        self.codes.append(np.full(rows.size, self.names.index((batch_id, file)), np.int32))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        def joined(arrays: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(arrays) if arrays else np.empty(0, dtype)

        return (
            joined(self.hi, np.uint64),
            joined(self.lo, np.uint32),
            joined(self.codes, np.int32),
            joined(self.rows, np.int64),
        )

    def part(self) -> Part:
        hi, lo, codes, rows = self.arrays()
        order = np.lexsort((lo, hi))
        return Part(hi[order], lo[order], codes[order], rows[order], list(self.names))


def lookup(parts: Iterable[Part], hi: np.ndarray, lo: np.ndarray) -> list[Location | None]:
    """Per key, where one of `parts` has it, or None."""
    out: list[Location | None] = [None] * hi.size
    for part in parts:
        at = part.find(hi, lo)
        for i in np.flatnonzero(at >= 0):
            out[i] = part.location(at[i])
    return out


class Runs:
    """Sorted parts that grow as rows are added: a part per addition, two of about one size
    merged (a binary counter), so a lookup searches a few parts and the rows are held as
    arrays (24 bytes each), not as one Python object per row."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def add(self, part: Part) -> None:
        self.parts.append(part)
        while len(self.parts) > 1 and len(self.parts[-2]) <= 2 * len(self.parts[-1]):
            last = self.parts.pop()
            self.parts[-1] = merge([self.parts[-1], last])

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def whole(self) -> Part:
        return merge(self.parts)

    def lookup(self, hi: np.ndarray, lo: np.ndarray) -> list[Location | None]:
        return lookup(self.parts, hi, lo)


class RowIndex:
    """The index as one clean run sees it: the parts of the head it read last, in memory."""

    def __init__(self, storage: ObjectStorage, layout: Layout) -> None:
        self.storage, self.layout = storage, layout
        self.head: dict = {}
        self.token: str | None = None
        self.parts: dict[str, Part] = {}
        self.markers_migrated = False
        """Set once a root's per-row markers are in the index: its heads say so from then
        on, and a run that reads such a head does not look for markers."""

    @property
    def head_key(self) -> str:
        return self.layout.row_index("head.json")

    @property
    def rows(self) -> int:
        """Rows of history, as the head last read counts them."""
        return sum(
            entry["rows"] for entry in (self.head.get("base"), self.head.get("delta")) if entry
        )

    def read_head(self) -> None:
        """Read the head alone (one request): a commit reads the parts it needs, a lookup
        needs `refresh`."""
        found = self.storage.read_versioned(self.head_key)
        head = self._checked(found)
        self.parts = {k: p for k, p in self.parts.items() if k in _part_keys(head)}
        self.head, self.token = head, (found[1] if found else None)

    def _checked(self, found: tuple[bytes, str] | None) -> dict:
        """The head read, refused when it is not this index's (format, the parts it names)."""
        head = json.loads(found[0]) if found else {}
        if found and head.get("format") != FORMAT:
            raise RowIndexError(f"{self.storage.uri(self.head_key)}: unknown format")
        for key in _part_keys(head):  # the head is data: it may name this index's parts only
            if not is_part(self.layout, key, "parts"):
                raise RowIndexError(
                    f"{self.storage.uri(self.head_key)} names {key!r}, which is not one of "
                    "this index's parts: refused (nothing is read or deleted)"
                )
        return head

    def refresh(self) -> list[Part]:
        """Read the head and every part it names that is not in memory yet; returns those
        (what other runs added since this one last looked)."""
        for _ in range(20):  # a part folded and deleted between head and read: look again
            found = self.storage.read_versioned(self.head_key)
            head = self._checked(found)
            wanted = _part_keys(head)
            try:
                added = {key: self._read(key) for key in wanted if key not in self.parts}
            except FileNotFoundError:
                continue
            self.parts = {k: self.parts[k] if k in self.parts else added[k] for k in wanted}
            self.head, self.token = head, (found[1] if found else None)
            return list(added.values())
        raise RowIndexError(f"{self.storage.uri(self.head_key)} keeps naming parts that vanish")

    def _read(self, key: str) -> Part:
        return read_part(self.storage, key)

    def _part(self, key: str) -> Part:
        """A part of the head, read the first time it is needed."""
        if key not in self.parts:
            self.parts[key] = self._read(key)
        return self.parts[key]

    def lookup(
        self, hi: np.ndarray, lo: np.ndarray, parts: Iterable[Part] | None = None
    ) -> list[Location | None]:
        """Per key, where it was first seen, or None."""
        return lookup(self.parts.values() if parts is None else parts, hi, lo)

    def commit(self, claims: Part, unseen: Iterable[Part] = ()) -> dict[tuple[str, int], Location]:
        """Add the claimed rows (a part: keys and where they are) to the index. The caller
        looked them up in the index at `self.token` and in `unseen` (what was added since
        it looked, when it knows). Returns the claims kept first elsewhere ((batch id, row)
        -> where), which are not added: the caller quarantines them. A claim of the very
        same row (a run cut short after its commit) holds."""
        lost: dict[tuple[str, int], Location] = {}
        keep = np.ones(len(claims), bool)
        candidates: Iterable[Part] = unseen
        while True:
            for i, where in enumerate(self.lookup(claims.hi, claims.lo, candidates)):
                if where is not None and keep[i]:
                    keep[i] = False  # here already: another run's, or this row's own
                    mine = claims.location(i)
                    if (where[0], where[1]) != mine[:2]:
                        lost[mine[:2]] = where
            if not keep.any():
                return lost
            part = claims if keep.all() else claims.subset(keep)
            try:
                head, written, replaced = self._next(part)
            except FileNotFoundError:  # folded away by another run since the head was read
                candidates = self.refresh()
                continue
            token = self.storage.swap(self.head_key, _dump(head), self.token)
            if token is not None:
                self.head, self.token = head, token
                self.parts = {k: p for k, p in self.parts.items() if k not in replaced}
                self.parts.update(written)
                # a reader that read the old head finds these gone and reads the head again
                self.storage.delete_many([k for k in replaced if k not in written])
                return lost
            candidates = self.refresh()  # someone committed first: check against theirs

    def _next(self, part: Part) -> tuple[dict, dict[str, Part], list[str]]:
        """The head after adding `part`, the parts written for it, the keys it replaces.
        The delta grows until it would outgrow the base; then base, delta and `part` fold
        into a new base, with an empty delta of its own: the base is rewritten each time
        the history doubles, and every other commit reads and replaces the same two parts."""
        base, delta = self.head.get("base"), self.head.get("delta")
        delta_rows = (delta["rows"] if delta else 0) + len(part)
        if base is None or delta_rows > FOLD_INTO_BASE * base["rows"]:
            keys = _part_keys(self.head)
            new_base = self._write(merge([*(self._part(k) for k in keys), part]))
            new_delta = self._write(Part.empty(), of=new_base[0])
            written = dict([new_base, new_delta])
            base = {"key": new_base[0], "rows": len(new_base[1])}
        else:  # the base is not read: it stays as it is
            keys = [delta["key"]] if delta else []
            new_delta = self._write(merge([*(self._part(k) for k in keys), part]))
            written = dict([new_delta])
        head = {
            "format": FORMAT,
            "base": {"key": base["key"], "rows": base["rows"]},
            "delta": {"key": new_delta[0], "rows": len(new_delta[1])},
            "markers_migrated": self.markers_migrated,
        }
        return head, written, keys

    def _write(self, part: Part, of: str = "") -> tuple[str, Part]:
        """Store a part under its content's hash, through a local file (a part of the whole
        history is never held twice in memory as bytes)."""
        with tempfile.TemporaryDirectory(prefix="mlops-index-") as folder:
            path = Path(folder) / "part.parquet"
            part.write(path, of)
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            key = self.layout.row_index(f"parts/{digest[:32]}.parquet")
            self.storage.put_file(key, path)
        return key, part


def read_part(storage: ObjectStorage, key: str) -> Part:
    """A stored part, read with one GET whatever its size (a commit's requests stay few)."""
    with storage.local_file(key, one_request=True) as path:
        return Part.read(path)


def is_part(layout: Layout, key: object, folder: str) -> bool:
    """Whether `key` is a part this index writes: `<folder>/<hex>.parquet` under its own
    root (a head or a migration record naming anything else is refused)."""
    prefix = layout.row_index(folder) + "/"
    if not isinstance(key, str) or not key.startswith(prefix):
        return False
    name = key[len(prefix) :].removesuffix(".parquet")
    return key.endswith(".parquet") and name.isalnum() and name.isascii()


def _part_keys(head: dict) -> list[str]:
    return [entry["key"] for entry in (head.get("base"), head.get("delta")) if entry]


def _dump(head: dict) -> bytes:
    return json.dumps(head, indent=2, sort_keys=True).encode()
