"""Fetch a torrent's info dict from the swarm (BEP 9) by info hash or magnet, without its data.

The adapter between libtorrent and our value objects: it adds a metadata-only torrent (upload
mode, every file at priority 0, so not a byte of payload is requested or written), waits for
``metadata_received_alert``, and removes the torrent again. The info dict's raw bytes
(``torrent_info.info_section()``) go through ``metainfo.metainfo_from_info_dict``, the parser
uploads use too, so a torrent reads the same however it reached the index (libtorrent's own
reading sanitises names and paths its own way). Not finding the metadata in time is an
outcome, not an exception.

Many fetches run at once on one session: the session's :class:`AlertPump` hands each
metadata, failure and removal alert to the fetch waiting on that torrent handle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libtorrent as lt

from keel.bittorrented import errors
from keel.bittorrented.dht import metrics
from keel.bittorrented.dht.session import DhtSession, Endpoint
from keel.bittorrented.torrent import metainfo
from keel.bittorrented.torrent.values import INFO_HASH_BYTES, Magnet, Metainfo

__all__ = ["FetchOutcome", "FetchStatus", "MetadataFetcher"]

DEFAULT_TIMEOUT_SECONDS = 10.0
# bitmagnet's save_files_threshold: enough to classify and search a torrent by its files.
DEFAULT_MAX_FILES = 100
REMOVAL_TIMEOUT_SECONDS = 2.0
INLINE_PARSE_BYTES = 64 * 1024  # about 25 ms of parsing; larger info dicts go to a thread

_FLAGS = lt.torrent_flags
# Both paused and auto_managed come set in fresh params; clearing only auto_managed leaves the
# torrent paused for good (it never even asks the DHT for peers).
_METADATA_ONLY = _FLAGS.upload_mode | _FLAGS.default_dont_download
_NOT_QUEUED = _FLAGS.paused | _FLAGS.auto_managed


class FetchStatus(enum.StrEnum):
    """How a metadata fetch ended."""

    FETCHED = "fetched"
    TIMED_OUT = "timed_out"  # no peer gave us the info dict in time: try again later
    FAILED = "failed"  # libtorrent refused it, or the info dict is malformed or too large
    UNSUPPORTED = "unsupported"  # a v2-only torrent: the index keys torrents by v1 hash


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """The result of one fetch; ``metainfo`` and ``info_section`` are set when FETCHED.

    ``info_hash`` is the hash asked for; ``metainfo.info_hash`` is the torrent's v1 hash, which
    differs when a hybrid torrent was asked for by its truncated v2 hash.
    """

    info_hash: bytes
    status: FetchStatus
    elapsed_seconds: float
    metainfo: Metainfo | None = None
    info_section: bytes | None = field(default=None, repr=False)  # the bencoded info dict
    detail: str | None = None

    @property
    def fetched(self) -> bool:
        return self.status is FetchStatus.FETCHED


@dataclass(slots=True)
class _Waiting:
    # The torrent_info on success, or libtorrent's reason on metadata_failed_alert.
    metadata: asyncio.Future[lt.torrent_info | str]
    removed: asyncio.Future[None]


@dataclass(slots=True)
class _Shared:
    task: asyncio.Task[FetchOutcome]
    callers: int = 0


class MetadataFetcher:
    """Fetches info dicts through one :class:`DhtSession`, many at a time.

    ``timeout_seconds`` bounds each fetch (overridable per call); ``max_files`` caps the files
    listed in each :class:`Metainfo`. Two fetches of one hash at once share a single torrent.
    Call ``aclose()`` before closing the session.
    """

    def __init__(
        self,
        session: DhtSession,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_files: int = DEFAULT_MAX_FILES,
        save_path: Path | None = None,
        source: str = "dht",
    ) -> None:
        if timeout_seconds <= 0 or max_files < 0:
            raise ValueError("timeout_seconds must be > 0 and max_files >= 0")
        self._session = session
        self.timeout_seconds = timeout_seconds
        self.max_files = max_files
        self.source = source
        # Nothing is written in upload mode with every file at priority 0, but libtorrent
        # still wants a save path.
        self._save_path = str(save_path or tempfile.gettempdir())
        self._waiting: dict[lt.torrent_handle, _Waiting] = {}
        self._shared: dict[bytes, _Shared] = {}
        self._unsubscribe = [
            session.alerts.subscribe(lt.metadata_received_alert, self._on_metadata),
            session.alerts.subscribe(lt.metadata_failed_alert, self._on_failed),
            session.alerts.subscribe(lt.torrent_removed_alert, self._on_removed),
        ]

    @property
    def in_flight(self) -> int:
        """Metadata-only torrents in the session right now."""
        return len(self._waiting)

    async def fetch(
        self,
        info_hash: bytes,
        *,
        peers: Sequence[Endpoint] = (),
        trackers: Sequence[str] = (),
        timeout_seconds: float | None = None,
        use_dht: bool | None = None,
    ) -> FetchOutcome:
        """Fetch the info dict of ``info_hash`` (20 bytes) from ``peers``, trackers or the DHT.

        ``use_dht`` defaults to "only when no peers are given": a torrent with DHT on looks up
        peers itself and announces us as one, which a crawler that already ran get_peers does
        not want. Returns TIMED_OUT after ``timeout_seconds`` (default: the fetcher's).
        """
        if len(info_hash) != INFO_HASH_BYTES:
            raise ValueError("info_hash must be 20 bytes")
        shared = self._shared.get(info_hash)
        if shared is None:
            task = asyncio.create_task(
                self._fetch_once(
                    info_hash,
                    peers=peers,
                    trackers=trackers,
                    timeout_seconds=timeout_seconds or self.timeout_seconds,
                    use_dht=not peers if use_dht is None else use_dht,
                ),
                name=f"metadata-{info_hash.hex()}",
            )
            shared = self._shared[info_hash] = _Shared(task)
            task.add_done_callback(lambda _: self._shared.pop(info_hash, None))
        shared.callers += 1
        try:
            # Shielded so one caller giving up does not cancel the fetch under the others.
            return await asyncio.shield(shared.task)
        except asyncio.CancelledError:
            if shared.callers == 1:
                shared.task.cancel()
            raise
        finally:
            shared.callers -= 1

    async def fetch_magnet(
        self, magnet: Magnet | str, *, timeout_seconds: float | None = None
    ) -> FetchOutcome:
        """Fetch by magnet: a parsed :class:`Magnet`, or a URI whose ``x.pe`` peers are used too.

        Raises ``MalformedMagnet`` for a URI libtorrent cannot read or one without a v1 btih.
        """
        if isinstance(magnet, Magnet):
            return await self.fetch(
                magnet.info_hash, trackers=magnet.trackers, timeout_seconds=timeout_seconds
            )
        try:
            params = lt.parse_magnet_uri(magnet)
        except RuntimeError as exc:
            raise errors.MalformedMagnet(str(exc)) from exc
        if not params.info_hashes.has_v1():
            raise errors.MalformedMagnet("no v1 (btih) info hash")
        return await self.fetch(
            params.info_hashes.v1.to_bytes(),
            peers=params.peers,
            trackers=params.trackers,
            timeout_seconds=timeout_seconds,
            use_dht=True,
        )

    async def aclose(self) -> None:
        """Cancel every fetch in flight (their torrents are removed) and stop listening."""
        tasks = [shared.task for shared in self._shared.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def _params(
        self, info_hash: bytes, peers: Sequence[Endpoint], trackers: Sequence[str], use_dht: bool
    ) -> lt.add_torrent_params:
        params = lt.add_torrent_params()
        params.info_hashes = lt.info_hash_t(lt.sha1_hash(info_hash))
        params.save_path = self._save_path
        own = self._session.endpoint
        params.peers = [peer for peer in peers if peer != own]
        params.trackers = list(trackers)
        flags = (params.flags | _METADATA_ONLY | _FLAGS.duplicate_is_error) & ~_NOT_QUEUED
        params.flags = flags if use_dht else flags | _FLAGS.disable_dht
        return params

    async def _fetch_once(
        self,
        info_hash: bytes,
        *,
        peers: Sequence[Endpoint],
        trackers: Sequence[str],
        timeout_seconds: float,
        use_dht: bool,
    ) -> FetchOutcome:
        started = time.monotonic()
        session = self._session.native
        existing = session.find_torrent(lt.sha1_hash(info_hash))
        if existing.is_valid():
            # Ours would be removed afterwards; never touch a torrent someone else added.
            info = existing.torrent_file()
            if info is None:
                return self._done(info_hash, started, FetchStatus.FAILED, "torrent in session")
            return await self._from_info(info_hash, started, info)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(loop.create_future(), loop.create_future())
        try:
            handle = session.add_torrent(self._params(info_hash, peers, trackers, use_dht))
        except RuntimeError as exc:
            return self._done(info_hash, started, FetchStatus.FAILED, str(exc))
        # No await since add_torrent: the pump cannot have dispatched this handle's alerts yet.
        self._waiting[handle] = waiting
        metrics.FETCHES_IN_FLIGHT.inc()
        try:
            async with asyncio.timeout(timeout_seconds):
                result = await waiting.metadata
        except TimeoutError:
            outcome = self._done(info_hash, started, FetchStatus.TIMED_OUT)
        except asyncio.CancelledError:
            self._remove(handle)
            raise
        else:
            if isinstance(result, str):
                outcome = self._done(info_hash, started, FetchStatus.FAILED, result)
            else:
                outcome = await self._from_info(info_hash, started, result)
        self._remove(handle)
        # Wait for the removal so the same hash can be fetched again right away.
        try:
            async with asyncio.timeout(REMOVAL_TIMEOUT_SECONDS):
                await waiting.removed
        except TimeoutError:
            self._waiting.pop(handle, None)
        return outcome

    def _remove(self, handle: lt.torrent_handle) -> None:
        if handle in self._waiting:
            self._session.native.remove_torrent(handle)
            metrics.FETCHES_IN_FLIGHT.dec()
            # Keep the entry until torrent_removed_alert resolves "removed"; drop it then.
            self._waiting[handle].removed.add_done_callback(
                lambda _: self._waiting.pop(handle, None)
            )

    async def _from_info(
        self, info_hash: bytes, started: float, info: lt.torrent_info
    ) -> FetchOutcome:
        raw = info.info_section()
        try:
            if len(raw) <= INLINE_PARSE_BYTES:
                parsed = self._parse(raw, info_hash)
            else:
                # The parser is pure Python (about 0.4 s per MB of info dict): a big one is
                # read on a worker thread so the loop keeps pumping alerts meanwhile.
                parsed = await asyncio.to_thread(self._parse, raw, info_hash)
        except errors.UnsupportedTorrent as exc:
            return self._done(info_hash, started, FetchStatus.UNSUPPORTED, str(exc))
        except errors.MalformedTorrent as exc:
            return self._done(info_hash, started, FetchStatus.FAILED, str(exc))
        outcome = FetchOutcome(
            info_hash=info_hash,
            status=FetchStatus.FETCHED,
            elapsed_seconds=time.monotonic() - started,
            metainfo=dataclasses.replace(parsed, source=self.source),
            info_section=raw,
        )
        self._observe(outcome)
        return outcome

    def _parse(self, raw: bytes, info_hash: bytes) -> Metainfo:
        return metainfo.metainfo_from_info_dict(
            raw, expected_info_hash=info_hash, max_files=self.max_files
        )

    def _done(
        self, info_hash: bytes, started: float, status: FetchStatus, detail: str | None = None
    ) -> FetchOutcome:
        outcome = FetchOutcome(
            info_hash=info_hash,
            status=status,
            elapsed_seconds=time.monotonic() - started,
            detail=detail,
        )
        self._observe(outcome)
        return outcome

    @staticmethod
    def _observe(outcome: FetchOutcome) -> None:
        metrics.METADATA_FETCHES.labels(outcome.status.value).inc()
        metrics.METADATA_FETCH_SECONDS.observe(outcome.elapsed_seconds)

    def _on_metadata(self, alert: lt.metadata_received_alert) -> None:
        waiting = self._waiting.get(alert.handle)
        if waiting is not None and not waiting.metadata.done():
            info = alert.handle.torrent_file()
            waiting.metadata.set_result(info if info is not None else "no torrent_info")

    def _on_failed(self, alert: lt.metadata_failed_alert) -> None:
        waiting = self._waiting.get(alert.handle)
        if waiting is not None and not waiting.metadata.done():
            waiting.metadata.set_result(alert.error.message() or alert.message())

    def _on_removed(self, alert: lt.torrent_removed_alert) -> None:
        waiting = self._waiting.get(alert.handle)
        if waiting is not None and not waiting.removed.done():
            waiting.removed.set_result(None)
