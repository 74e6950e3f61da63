"""64-bit hashes that are the same in every process and every run.

Python's own ``hash`` of a string changes from one process to the next, so an
index built on it could not be written to a file, nor computed by the import
workers for the importing process. BLAKE2b cut to 8 bytes is in the standard
library and spreads any text evenly; a match is always confirmed against the
text itself, so a collision costs a comparison, never a wrong answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def text_hash(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def key_hash(type_name: str, value: str) -> int:
    """The hash of an identifier's key."""
    return text_hash(f"{type_name}\x1f{value}")


def hashes_of(texts: Iterable[str]) -> npt.NDArray[np.uint64]:
    return np.fromiter(map(text_hash, texts), dtype=np.uint64)
