"""The crawler's memory of info hashes: a scalable Bloom filter and the store that keeps it.

A Bloom filter never forgets (no false negatives) and sometimes claims to know a hash it never
saw (false positives, at most ``error_rate``). For a crawler that is the right way round: a false
positive skips one torrent, a false negative would re-fetch a deleted or banned one. A *stable*
Bloom filter (bitmagnet's in-memory choice) decays cells on purpose, so it does forget; this one
only grows, which is why it can also hold the "never fetch again" list.

Scalable (Almeida et al., 2007): when a slice fills to its capacity a new one is added with
``growth`` times the capacity and ``tightening`` times the error rate, so the compound false
positive rate stays under the target however many hashes arrive.

``to_bytes()`` / ``from_bytes()`` give a self-describing, checksummed blob; the database layer
keeps it through a :class:`SeenStore` (bitmagnet keeps its filter the same way, in a
``bloom_filters`` row).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

__all__ = [
    "BloomFilter",
    "FileSeenStore",
    "MemorySeenStore",
    "ScalableBloomFilter",
    "SeenStore",
    "ban_hashes",
    "load_filter",
]

_MAGIC = b"KBLM"
_VERSION = 1
_SALT_BYTES = 16
# magic, version, salt, error_rate, initial_capacity, growth, tightening, slice count
_HEADER = struct.Struct(">4sB16sdQHdI")
# capacity, error_rate, count, bits (m), hash functions (k)
_SLICE = struct.Struct(">QdQQH")
_CRC = struct.Struct(">I")
_LN2_SQUARED = math.log(2) ** 2


def _probes(item: bytes, salt: bytes) -> tuple[int, int]:
    # Two 64-bit hashes give every probe by double hashing (Kirsch & Mitzenmacher), so one
    # digest serves all k probes of all slices. Keyed so an adversary who does not know the
    # salt cannot craft hashes that collide in our filter.
    digest = hashlib.blake2b(item, digest_size=16, key=salt).digest()
    first = int.from_bytes(digest[:8], "big")
    second = int.from_bytes(digest[8:], "big")
    return first, second


class BloomFilter:
    """A fixed-size Bloom filter for ``capacity`` items at false-positive rate ``error_rate``.

    Items are hashed with :func:`_probes` outside, so a :class:`ScalableBloomFilter` hashes an
    item once for all its slices.
    """

    __slots__ = ("_bits", "bit_count", "capacity", "count", "error_rate", "hash_count")

    def __init__(self, capacity: int, error_rate: float) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if not 0.0 < error_rate < 1.0:
            raise ValueError("error_rate must be in (0, 1)")
        self.capacity = capacity
        self.error_rate = error_rate
        # The optimal sizes for n items at rate p: m = -n ln p / (ln 2)^2, k = m/n ln 2.
        self.bit_count = max(8, math.ceil(-capacity * math.log(error_rate) / _LN2_SQUARED))
        self.hash_count = max(1, round(self.bit_count / capacity * math.log(2)))
        self.count = 0
        self._bits = bytearray((self.bit_count + 7) // 8)

    @property
    def full(self) -> bool:
        """True once ``capacity`` items were added: past it the error rate rises."""
        return self.count >= self.capacity

    def contains_probes(self, first: int, second: int) -> bool:
        """Whether every probe bit of a hashed item is set."""
        bits, size = self._bits, self.bit_count
        index, stride = first % size, second % size
        for i in range(self.hash_count):  # the probes of _indices, stopping at the first miss
            if not bits[index >> 3] & (1 << (index & 7)):
                return False
            index = (index + stride) % size
            stride = (stride + i) % size
        return True

    def add_probes(self, first: int, second: int) -> None:
        """Set the probe bits of a hashed item and count it."""
        bits = self._bits
        for index in self._indices(first, second):
            bits[index >> 3] |= 1 << (index & 7)
        self.count += 1

    def _indices(self, first: int, second: int) -> list[int]:
        # Enhanced double hashing (Dillinger & Manolios, 2004): plain h1 + i·h2 clusters in
        # small filters and measured about 1.3x the designed false-positive rate; the growing
        # stride keeps it on target.
        size = self.bit_count
        index, stride = first % size, second % size
        indices = []
        for i in range(self.hash_count):
            indices.append(index)
            index = (index + stride) % size
            stride = (stride + i) % size
        return indices

    def _pack(self) -> bytes:
        header = _SLICE.pack(
            self.capacity, self.error_rate, self.count, self.bit_count, self.hash_count
        )
        return header + bytes(self._bits)

    @classmethod
    def _unpack(cls, data: memoryview, offset: int) -> tuple[BloomFilter, int]:
        if len(data) < offset + _SLICE.size:
            raise ValueError("truncated Bloom filter slice header")
        capacity, error_rate, count, bit_count, hash_count = _SLICE.unpack_from(data, offset)
        offset += _SLICE.size
        sliced = cls(capacity, error_rate)
        if (sliced.bit_count, sliced.hash_count) != (bit_count, hash_count):
            raise ValueError("Bloom filter slice geometry does not match its parameters")
        end = offset + len(sliced._bits)
        if len(data) < end:
            raise ValueError("truncated Bloom filter slice bits")
        sliced._bits[:] = data[offset:end]
        sliced.count = count
        return sliced, end


class ScalableBloomFilter:
    """A Bloom filter that grows: no false negatives, false positives at most ``error_rate``.

    ``initial_capacity`` items fit in the first slice; each next slice holds ``growth`` times
    more at ``tightening`` times the error rate. Memory is about 1.44·log2(1/p) bits per item
    (about 2 MB per million hashes at p = 0.001). Not thread-safe: use from one event loop.
    """

    def __init__(
        self,
        *,
        error_rate: float = 0.001,
        initial_capacity: int = 1_000_000,
        growth: int = 2,
        tightening: float = 0.5,
        salt: bytes | None = None,
    ) -> None:
        if not 0.0 < error_rate < 1.0:
            raise ValueError("error_rate must be in (0, 1)")
        if initial_capacity < 1 or growth < 1 or not 0.0 < tightening < 1.0:
            raise ValueError("need initial_capacity >= 1, growth >= 1, 0 < tightening < 1")
        if salt is not None and len(salt) != _SALT_BYTES:
            raise ValueError(f"salt must be {_SALT_BYTES} bytes")
        self.error_rate = error_rate
        self.initial_capacity = initial_capacity
        self.growth = growth
        self.tightening = tightening
        self._salt = salt if salt is not None else os.urandom(_SALT_BYTES)
        self._slices: list[BloomFilter] = []

    def __len__(self) -> int:
        """Items added (an item that was already, or falsely, present is not counted)."""
        return sum(s.count for s in self._slices)

    def __contains__(self, item: bytes) -> bool:
        first, second = _probes(item, self._salt)
        return any(s.contains_probes(first, second) for s in self._slices)

    @property
    def byte_size(self) -> int:
        """Bytes held by the bit arrays (what ``to_bytes()`` is, within a few dozen bytes)."""
        return sum(len(s._bits) for s in self._slices)

    def add(self, item: bytes) -> bool:
        """Add ``item``; True if it was new, False if the filter already (maybe falsely) had it."""
        first, second = _probes(item, self._salt)
        if any(s.contains_probes(first, second) for s in self._slices):
            return False
        if not self._slices or self._slices[-1].full:
            self._slices.append(self._next_slice())
        self._slices[-1].add_probes(first, second)
        return True

    def _next_slice(self) -> BloomFilter:
        n = len(self._slices)
        # The rates form a geometric series p0 + p0·r + p0·r² … = p0 / (1 - r); starting at
        # p0 = p·(1 - r) keeps the compound rate under the target p.
        first_rate = self.error_rate * (1.0 - self.tightening)
        return BloomFilter(self.initial_capacity * self.growth**n, first_rate * self.tightening**n)

    def to_bytes(self) -> bytes:
        """The whole filter as bytes: parameters, salt, every slice, and a CRC-32 at the end."""
        header = _HEADER.pack(
            _MAGIC,
            _VERSION,
            self._salt,
            self.error_rate,
            self.initial_capacity,
            self.growth,
            self.tightening,
            len(self._slices),
        )
        body = header + b"".join(s._pack() for s in self._slices)
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> ScalableBloomFilter:
        """Rebuild a filter from ``to_bytes()``; ValueError if the bytes are not one, or damaged."""
        view = memoryview(data)
        if len(view) < _HEADER.size + _CRC.size:
            raise ValueError("too short to be a Bloom filter")
        body, (crc,) = view[: -_CRC.size], _CRC.unpack_from(view, len(view) - _CRC.size)
        magic, version, salt, error_rate, initial, growth, tightening, slices = _HEADER.unpack_from(
            body, 0
        )
        if magic != _MAGIC or version != _VERSION:
            raise ValueError("not a Keel Bloom filter (magic or version)")
        if zlib.crc32(body) != crc:
            raise ValueError("Bloom filter checksum mismatch")
        bloom = cls(
            error_rate=error_rate,
            initial_capacity=initial,
            growth=growth,
            tightening=tightening,
            salt=salt,
        )
        offset = _HEADER.size
        for _ in range(slices):
            sliced, offset = BloomFilter._unpack(body, offset)
            bloom._slices.append(sliced)
        if offset != len(body):
            raise ValueError("trailing bytes after the Bloom filter")
        return bloom


class SeenStore(Protocol):
    """Where the crawler's seen filter lives between runs (the database layer implements it)."""

    async def load(self) -> bytes | None:
        """The bytes last saved, or None if nothing was ever saved."""
        ...

    async def save(self, data: bytes) -> None:
        """Replace the stored bytes with ``data`` (a whole filter, not a delta)."""
        ...


class MemorySeenStore:
    """A :class:`SeenStore` in memory: tests, and a crawl that should forget on exit."""

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data
        self.saves = 0

    async def load(self) -> bytes | None:
        """The bytes last saved, or the initial bytes."""
        return self.data

    async def save(self, data: bytes) -> None:
        """Keep ``data``."""
        self.data = data
        self.saves += 1


class FileSeenStore:
    """A :class:`SeenStore` in one file, replaced atomically (a crawl without a database)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        return await asyncio.to_thread(self._read)

    async def save(self, data: bytes) -> None:
        """Write ``data`` to a temporary file beside the target and rename it over the target."""
        await asyncio.to_thread(self._write, data)

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_bytes(data)
        # A crash mid-write must leave the previous filter, never half of a new one.
        os.replace(partial, self.path)


async def load_filter(store: SeenStore, *, error_rate: float = 0.001) -> ScalableBloomFilter:
    """The filter kept in ``store``, or a new empty one; ValueError if the stored bytes are bad."""
    data = await store.load()
    if data is None:
        return ScalableBloomFilter(error_rate=error_rate)
    return ScalableBloomFilter.from_bytes(data)


async def ban_hashes(store: SeenStore, info_hashes: Iterable[bytes]) -> int:
    """Add ``info_hashes`` to the filter kept in ``store`` so no crawl fetches them again.

    For use while no crawler runs on this store (a running crawler saves its own copy over it;
    ban through ``Crawler.ban`` then). Returns how many were new to the filter.
    """
    bloom = await load_filter(store)
    added = sum(bloom.add(info_hash) for info_hash in info_hashes)
    await store.save(bloom.to_bytes())
    return added
