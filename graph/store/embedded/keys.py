"""Identifier keys by sequence number, in a few arrays instead of a million tuples.

Each identifier's type is a small code and its value a slice of one UTF-8
buffer; a key is found from its 64-bit hash in a sorted array. A million
keys take about the bytes of their text plus 20 per key, where a dict of
tuples of strings takes some 250, and an index written to a file is read
back as it is, with no hashing at open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from graph.hashing import key_hash
from graph.models import Key
from graph.pacing import every_few, step_aside

NO_TYPE = 255  # the code of a sequence number no identifier has (never used, or removed)
_CHUNK = 128  # keys looked up between two points where a write may step aside

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class KeyIndex:
    """Keys by sequence number (``type_code``, ``value_ptr``/``values``) and back (``hashes``)."""

    types: tuple[str, ...]
    type_code: npt.NDArray[np.uint8]  # by seq; NO_TYPE where there is no identifier
    value_ptr: Ints  # by seq, one more: the value of seq s is values[ptr[s]:ptr[s + 1]]
    values: bytes
    hashes: npt.NDArray[np.uint64]  # of every live key, sorted
    hash_seq: Ints  # the seq of each hash

    @classmethod
    def build(
        cls, keys: Sequence[Key | None], hashes: npt.NDArray[np.uint64] | None = None
    ) -> KeyIndex:
        """The index of ``keys[seq]`` for each seq (None where there is no identifier).

        ``hashes[seq]``, when given, is ``key_hash`` of ``keys[seq]`` already
        (the import's workers compute them in parallel).
        """
        types: dict[str, int] = {}
        codes = np.full(len(keys), NO_TYPE, dtype=np.uint8)
        encoded: list[bytes] = []
        seqs: list[int] = []
        for seq, key in enumerate(keys):
            if key is None:
                encoded.append(b"")
                continue
            code = types.setdefault(key[0], len(types))
            if code >= NO_TYPE:
                raise ValueError(f"more than {NO_TYPE} identifier types")
            codes[seq] = code
            encoded.append(key[1].encode("utf-8", "surrogatepass"))
            seqs.append(seq)
        seq_array = np.array(seqs, dtype=np.int64)
        if hashes is None:
            hash_array = np.fromiter(
                (key_hash(*k) for k in keys if k is not None), dtype=np.uint64, count=len(seqs)
            )
        else:
            hash_array = hashes[seq_array]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        ptr = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        order = np.argsort(hash_array, kind="stable")
        return cls(tuple(types), codes, ptr, b"".join(encoded), hash_array[order], seq_array[order])

    def __len__(self) -> int:
        return len(self.type_code)

    def key(self, seq: int) -> Key | None:
        if seq >= len(self.type_code):
            return None
        code = int(self.type_code[seq])
        if code == NO_TYPE:
            return None
        start, end = int(self.value_ptr[seq]), int(self.value_ptr[seq + 1])
        return self.types[code], self.values[start:end].decode("utf-8", "surrogatepass")

    def seqs(self, keys: Sequence[Key]) -> list[int | None]:
        """Each key's seq, or None, ``_CHUNK`` keys at a time with a point between.

        Hashing, searching the sorted hashes (a cache miss per step in an
        array of millions) and checking each hit take about a millisecond per
        thousand keys, and a write asks for thousands at once.
        """
        if not keys or not len(self.hashes):
            return [None] * len(keys)
        found: list[int | None] = []
        for start in range(0, len(keys), _CHUNK):
            step_aside()
            found += self._chunk_seqs(keys[start : start + _CHUNK])
        return found

    def _chunk_seqs(self, keys: Sequence[Key]) -> list[int | None]:
        wanted = np.fromiter((key_hash(*key) for key in keys), dtype=np.uint64, count=len(keys))
        at = np.searchsorted(self.hashes, wanted).tolist()
        hashes, size = self.hashes, len(self.hashes)
        found: list[int | None] = []
        for key, h, i in zip(keys, wanted.tolist(), at, strict=True):
            seq = None
            while i < size and int(hashes[i]) == h:
                candidate = int(self.hash_seq[i])
                if self.key(candidate) == key:
                    seq = candidate
                    break
                i += 1
            found.append(seq)
        return found

    def extended(
        self, added: Sequence[tuple[int, Key]], removed: Iterable[int], size: int
    ) -> KeyIndex:
        """This index for seqs below ``size``, keys added at new seqs and ``removed`` gone.

        Removed values stay in the buffer, unreachable (no code, no hash), until
        the next full build: copying the buffer is the cost this avoids.
        """
        old = len(self.type_code)
        size = max([size, old, *(seq + 1 for seq, _ in added)])
        types = dict(zip(self.types, range(len(self.types)), strict=True))
        codes = np.full(size, NO_TYPE, dtype=np.uint8)
        codes[:old] = self.type_code
        gone = np.fromiter(removed, dtype=np.int64)
        codes[gone] = NO_TYPE
        lengths = np.zeros(size - old, dtype=np.int64)
        tail: list[bytes] = []
        new_hashes: list[int] = []
        new_seqs: list[int] = []
        for seq, key in every_few(sorted(added)):
            if seq < old:
                raise ValueError(f"seq {seq} is not new")
            codes[seq] = types.setdefault(key[0], len(types))
            value = key[1].encode("utf-8", "surrogatepass")
            lengths[seq - old] = len(value)
            tail.append(value)
            new_hashes.append(key_hash(*key))
            new_seqs.append(seq)
        ptr = np.concatenate([self.value_ptr, self.value_ptr[-1] + np.cumsum(lengths)])
        keep = ~np.isin(self.hash_seq, gone) if len(gone) else slice(None)
        new = np.array(new_hashes, dtype=np.uint64)
        order = np.argsort(new, kind="stable")
        at = np.searchsorted(self.hashes[keep], new[order], side="right")
        hashes = np.insert(self.hashes[keep], at, new[order])
        seqs = np.insert(self.hash_seq[keep], at, np.array(new_seqs, dtype=np.int64)[order])
        values = self.values + b"".join(tail)
        return KeyIndex(tuple(types), codes, ptr, values, hashes, seqs)
