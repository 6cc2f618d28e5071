"""Realistic, reproducible torrent release names with their true classification.

Release names in the wild are written by a few conventions, and that is what makes them hard to
search: ``The.Dark.Lake.2019.1080p.BluRay.x264-SPARKS``, ``Dark Lake (2019) [1080p] [YTS.MX]``,
``Show.Name.S03E07.720p.WEB.h264-GRP``, ``Artist - Album (2011) [FLAC]``,
``Product.v2.3.1.x64-TEAM``. This module writes such names for movies, episodes, season packs,
music and software, and hands back the classification it used, so a 10M-row corpus needs no
guessit (which costs about a millisecond a name).

Words are Zipf-distributed, as in real titles: a vocabulary of common English title words
(``the``, ``of``, ``and``, ``dark``, ``love`` …) followed by made-up words, drawn by rank with
P(rank <= r) ~ log r / log V. Titles belong to *works* (a film, a show, an artist, a product),
and works are Zipf-popular too, so a popular film has hundreds of releases and a phrase like
``"dark lake"`` means something. Seeders follow a Pareto tail (half the torrents have none);
sizes are log-normal per kind; publication dates spread over 2012 to 2026, denser lately.

Everything is a function of ``(seed, row number)``: rows are made in blocks, each block from its
own seeded generator, so ``entries(n, start=k)`` makes rows k.. n-1 exactly as a run from 0
would (a load can resume) and two runs with one seed write the same corpus.

    .venv/bin/python bench/bittorrented_names.py 20        # print 20 names with their fields
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from keel.bittorrented.catalog.store import Entry
from keel.bittorrented.naming.classify import Classification, ContentType
from keel.bittorrented.torrent.values import Metainfo

BLOCK_ROWS = 4096
SOURCE = "dht"
DEFAULT_SEED = 20261201


def _words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text.split()))


# Ranked first in the vocabulary, so the head of the Zipf curve is these, in this order.
ENGLISH = _words(
    "the of and a in to my man love night dark last day world king time life war dead house "
    "girl black city star story little blood lost home one two on for with from at by we it "
    "is you me no all new big red white blue fire water ice iron steel gold silver moon "
    "sun sky sea river road dream ghost game secret shadow heart soul eye hand wild "
    "lady boy boys girls men women mother father brother sister family friend friends "
    "american british french first second final great good bad evil holy high deep "
    "lord queen prince princess knight dragon wolf tiger lion bird cat dog horse "
    "summer winter spring fall christmas midnight morning "
    "empire kingdom republic planet space galaxy earth mars return rise revenge "
    "legend legacy origins begins returns forever never again above below beyond inside "
    "outside under over after before"
)
# A title never ends on one of these: "Dark Of" is no title, "Dark Of Night" is.
_FUNCTION_WORDS = frozenset(
    _words("the of and a in to on for with from at by we it is you me no all my one two")
)
_SYLLABLES = _words(
    "ka ro min tel va si lo ne ra tu be dor an el is ur ma zo fi ge hal ko lu ri sen ta "
    "vor wen xa yu zel bra cro dri fla gro kri pla sto tri vel mor nar ost pel qui ren sol "
    "tor ul vin wyr ash ber cal dun eth fen gar hol ith jor kel lan mir nor oth par rath "
    "sar thal und var wil"
)

MOVIE_SOURCES = (("BluRay", 30), ("WEB-DL", 25), ("WEBRip", 20), ("HDRip", 6), ("BDRip", 6),
                 ("DVDRip", 6), ("HDTV", 4), ("REMUX", 3))  # fmt: skip
TV_SOURCES = (("WEB", 30), ("WEB-DL", 25), ("WEBRip", 15), ("HDTV", 15), ("AMZN.WEB-DL", 8),
              ("NF.WEB-DL", 7))  # fmt: skip
RESOLUTIONS = (("1080p", 45), ("720p", 25), ("2160p", 12), ("480p", 8), ("576p", 3), ("", 7))
MOVIE_CODECS = (("x264", 40), ("x265", 25), ("H.264", 10), ("HEVC", 10), ("XviD", 7),
                ("AV1", 3), ("H.265", 5))  # fmt: skip
TV_CODECS = (("h264", 30), ("x264", 30), ("x265", 20), ("HEVC", 12), ("H.264", 8))
AUDIO = (("", 50), ("DTS", 10), ("AAC", 12), ("DD5.1", 10), ("AC3", 6), ("Atmos", 5),
         ("TrueHD", 4), ("AAC2.0", 3))  # fmt: skip
EXTRAS = (("", 80), ("EXTENDED", 4), ("REPACK", 4), ("PROPER", 3), ("10bit", 4), ("HDR", 3),
          ("UNRATED", 1), ("DIRECTORS.CUT", 1))  # fmt: skip
MUSIC_FORMATS = (("[FLAC]", 35), ("[MP3 320]", 25), ("(320 kbps)", 10), ("[FLAC 24bit]", 8),
                 ("[MP3]", 12), ("[AAC]", 5), ("[WEB FLAC]", 5))  # fmt: skip
ARCH = (("x64", 50), ("x86", 10), ("Win64", 10), ("", 20), ("macOS", 7), ("Linux", 3))
EDITIONS = (("", 45), ("Pro", 20), ("Ultimate", 8), ("Enterprise", 7), ("Portable", 8),
            ("Multilingual", 7), ("Incl.Keygen", 5))  # fmt: skip
KINDS = ((ContentType.MOVIE, 35), ("episode", 35), ("season", 7), (ContentType.MUSIC, 13),
         (ContentType.SOFTWARE, 10))  # fmt: skip

EPOCH_START = int(datetime(2012, 1, 1, tzinfo=UTC).timestamp())
EPOCH_END = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())


class _Pick:
    """Weighted choice from a small fixed table in O(1): the table spelled out, one slot per
    unit of weight (random.choices costs ~5 µs a call, too much at 10M rows)."""

    def __init__(self, pairs: tuple[tuple[Any, int], ...]) -> None:
        self.slots = [value for value, weight in pairs for _ in range(weight)]
        self.size = len(self.slots)

    def __call__(self, rng: random.Random) -> Any:
        return self.slots[int(rng.random() * self.size)]


_movie_source, _tv_source = _Pick(MOVIE_SOURCES), _Pick(TV_SOURCES)
_resolution, _audio, _extra = _Pick(RESOLUTIONS), _Pick(AUDIO), _Pick(EXTRAS)
_movie_codec, _tv_codec = _Pick(MOVIE_CODECS), _Pick(TV_CODECS)
_music_format, _arch, _edition = _Pick(MUSIC_FORMATS), _Pick(ARCH), _Pick(EDITIONS)
_kind = _Pick(KINDS)
_title_length = _Pick(((1, 20), (2, 35), (3, 25), (4, 14), (5, 6)))
_season_length = _Pick(((8, 1), (10, 1), (13, 1), (22, 1), (24, 1)))


def zipf_rank(rng: random.Random, size: int) -> int:
    """A rank in [0, size) with P(rank < r) = log(r + 1) / log(size + 1): Zipf with s = 1."""
    return min(int((size + 1) ** rng.random()) - 1, size - 1)


def _made_up_words(count: int, seed: int) -> list[str]:
    rng = random.Random(f"{seed}:vocabulary")
    seen = set(ENGLISH)
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass(frozen=True, slots=True)
class Work:
    """What every release of one film, show, artist or product shares."""

    title: tuple[str, ...]
    year: int
    seasons: int
    episodes: int
    major: int


_KIND_SALT = {"movie": 1, "show": 2, "artist": 3, "product": 4}


@dataclass(frozen=True)
class Corpus:
    """The shape of a generated corpus: its vocabulary, its works and its random seed.

    Pools grow with ``rows`` so a bigger corpus has more distinct titles, as a real index does.
    """

    rows: int
    seed: int = DEFAULT_SEED

    @cached_property
    def vocabulary(self) -> list[str]:
        """Title words by rank: common English first, then made-up words."""
        return list(ENGLISH) + _made_up_words(max(20_000, self.rows // 40), self.seed)

    @cached_property
    def groups(self) -> list[str]:
        """Release groups by popularity."""
        rng = random.Random(f"{self.seed}:groups")
        names: list[str] = []
        seen: set[str] = set()
        while len(names) < 3000:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3))))
            styled = word.upper() if rng.random() < 0.6 else word.capitalize()
            if len(styled) >= 3 and styled.lower() not in seen:
                seen.add(styled.lower())
                names.append(styled)
        return names

    @cached_property
    def pool_sizes(self) -> dict[str, int]:
        n = max(self.rows, 1000)
        return {"movie": n // 8, "show": n // 120, "artist": n // 40, "product": n // 150}

    @cached_property
    def _works(self) -> dict[tuple[str, int], Work]:
        return {}

    def title(self, rng: random.Random, longest: int = 5) -> list[str]:
        vocabulary = self.vocabulary
        size = len(vocabulary)
        words = [vocabulary[zipf_rank(rng, size)] for _ in range(min(_title_length(rng), longest))]
        while words[-1] in _FUNCTION_WORDS:
            words[-1] = vocabulary[zipf_rank(rng, size)]
        return [w.capitalize() for w in words]

    def work(self, kind: str, rng: random.Random, longest: int = 5) -> Work:
        """A Zipf-popular work of ``kind``: its traits depend only on (seed, kind, number)."""
        number = zipf_rank(rng, self.pool_sizes[kind])
        cache = self._works
        work = cache.get((kind, number))
        if work is None:
            # Seeding a generator costs more than the rest of a row; works repeat (Zipf), so
            # keep the popular ones. The cap bounds memory at 10M rows (~1.2M movies).
            traits = random.Random(self.seed * 1_000_003 + number * 8 + _KIND_SALT[kind])
            work = Work(
                title=tuple(self.title(traits, longest)),
                year=max(1930, 2026 - int(traits.expovariate(1 / 14))),
                seasons=traits.randint(1, 12),
                episodes=_season_length(traits),
                major=traits.randint(1, 30)
                if traits.random() < 0.7
                else traits.randint(2015, 2026),
            )
            if len(cache) < 300_000:
                cache[(kind, number)] = work
        return work

    def group(self, rng: random.Random) -> str:
        return self.groups[zipf_rank(rng, len(self.groups))]


@dataclass(frozen=True, slots=True)
class Release:
    """One generated torrent: what a crawler would see, and what classification would say."""

    name: str
    classification: Classification
    size: int
    seeders: int
    leechers: int
    published_ts: int
    info_hash: bytes

    def entry(self) -> Entry:
        metainfo = Metainfo(
            info_hash=self.info_hash,
            name=self.name,
            size=self.size,
            # File lists are not generated: search never reads them, and at 10M rows they
            # would only make the load slower. files_count 0 stores files_status "single".
            files=(),
            files_count=0,
            source=SOURCE,
            published_at=datetime.fromtimestamp(self.published_ts, UTC),
            seeders=self.seeders,
            leechers=self.leechers,
        )
        return Entry(metainfo, self.classification)


def _join(parts: list[str], sep: str) -> str:
    return sep.join(p for p in parts if p)


def _size(rng: random.Random, median: float, sigma: float = 0.6) -> int:
    return max(1024, int(rng.lognormvariate(math.log(median), sigma)))


_GB = 1024**3
_RES_SCALE = {"2160p": 4.0, "1080p": 1.5, "720p": 0.7, "576p": 0.45, "480p": 0.35, "": 0.8}


def _movie(corpus: Corpus, rng: random.Random) -> tuple[str, Classification, int]:
    work = corpus.work("movie", rng)
    words, year = list(work.title), work.year
    res, source, codec = _resolution(rng), _movie_source(rng), _movie_codec(rng)
    group = corpus.group(rng)
    style = rng.random()
    if style < 0.6:  # scene: dots everywhere, group after a dash
        head = _join([*words, str(year), _extra(rng), res, source, _audio(rng), codec], ".")
        name = f"{head}-{group}"
    elif style < 0.85:  # tracker style: spaces, year in parentheses, tags in brackets
        tags = "".join(f"[{t}]" for t in (res, source, _audio(rng)) if t)
        name = f"{' '.join(words)} ({year}) {tags} [{group}]"
    else:  # spaced scene
        name = _join([*words, str(year), res, source, codec], " ") + f"-{group}"
    size = _size(rng, 2 * _GB * _RES_SCALE[res])
    classification = Classification(
        ContentType.MOVIE, " ".join(words), year, None, None, res or None, codec, group
    )
    return name, classification, size


def _episode(corpus: Corpus, rng: random.Random) -> tuple[str, Classification, int]:
    show = corpus.work("show", rng, longest=4)
    words = list(show.title)
    season = 1 + int(rng.random() * show.seasons)
    episode = 1 + int(rng.random() * show.episodes)
    res, source, codec = _resolution(rng), _tv_source(rng), _tv_codec(rng)
    group = corpus.group(rng)
    tag = f"S{season:02d}E{episode:02d}"
    episode_title = corpus.title(rng, longest=4) if rng.random() < 0.3 else []
    if rng.random() < 0.8:
        name = _join([*words, tag, *episode_title, res, source, codec], ".") + f"-{group}"
    else:
        name = f"{' '.join(words)} - {tag} - {' '.join(episode_title) or 'Episode'} [{res}]"
    classification = Classification(
        ContentType.TV_SHOW, " ".join(words), None, season, episode, res or None, codec, group
    )
    return name, classification, _size(rng, 0.6 * _GB * _RES_SCALE[res])


def _season_pack(corpus: Corpus, rng: random.Random) -> tuple[str, Classification, int]:
    show = corpus.work("show", rng, longest=4)
    words, seasons = list(show.title), show.seasons
    season = 1 + int(rng.random() * seasons)
    res, codec = _resolution(rng), _tv_codec(rng)
    group = corpus.group(rng)
    style = rng.random()
    if style < 0.6:
        name = _join([*words, f"S{season:02d}", res, _tv_source(rng), codec], ".") + f"-{group}"
    elif style < 0.85:
        name = f"{' '.join(words)} Season {season} Complete {res} {_tv_source(rng)}".rstrip()
    else:
        name = _join([*words, f"S01-S{seasons:02d}", "COMPLETE", res, codec], ".") + f"-{group}"
        season = 1
    classification = Classification(
        ContentType.TV_SHOW, " ".join(words), None, season, None, res or None, codec, group
    )
    return name, classification, _size(rng, 8 * _GB * _RES_SCALE[res], 0.8)


def _music(corpus: Corpus, rng: random.Random) -> tuple[str, Classification, int]:
    artist = list(corpus.work("artist", rng, longest=3).title)
    album = corpus.title(rng, longest=4)
    year = max(1950, 2026 - int(rng.expovariate(1 / 15)))
    fmt = _music_format(rng)
    style = rng.random()
    if style < 0.7:
        name = f"{' '.join(artist)} - {' '.join(album)} ({year}) {fmt}"
    elif style < 0.9:  # scene music
        name = _join([*artist, *album, "WEB", str(year), corpus.group(rng)], "-")
    else:
        name = f"{' '.join(artist)} - Discography ({year - 20}-{year}) {fmt}"
    lossless = "FLAC" in fmt
    size = _size(rng, (450 if lossless else 120) * 1024**2, 0.7)
    return name, Classification(ContentType.MUSIC, " ".join(album), year), size


def _software(corpus: Corpus, rng: random.Random) -> tuple[str, Classification, int]:
    work = corpus.work("product", rng, longest=3)
    product = list(work.title)
    version = f"v{work.major}.{int(rng.random() * 13)}.{int(rng.random() * 31)}"
    edition, arch = _edition(rng), _arch(rng)
    if rng.random() < 0.7:
        name = _join([*product, edition, version, arch], ".") + f"-{corpus.group(rng)}"
    else:
        name = _join([*product, edition, version.replace("v", "", 1), arch], " ")
    return name, Classification(ContentType.SOFTWARE, " ".join(product)), _size(rng, 400 * 1024**2)


_MAKERS = {
    ContentType.MOVIE: _movie,
    "episode": _episode,
    "season": _season_pack,
    ContentType.MUSIC: _music,
    ContentType.SOFTWARE: _software,
}


def _published(rng: random.Random) -> int:
    # sqrt skews towards recent years, as an index that keeps growing does.
    return EPOCH_START + int((EPOCH_END - EPOCH_START) * math.sqrt(rng.random()))


def _swarm(rng: random.Random) -> tuple[int, int]:
    seeders = min(int(rng.paretovariate(1.1)) - 1, 250_000)
    leechers = min(int(seeders * rng.random() * 0.6) + (rng.random() < 0.3), 250_000)
    return seeders, leechers


def releases(corpus: Corpus, stop: int, *, start: int = 0) -> Iterator[Release]:
    """Rows ``start`` .. ``stop - 1`` of the corpus, each the same on every run."""
    block = start // BLOCK_ROWS
    row = block * BLOCK_ROWS
    while row < stop:
        rng = random.Random(f"{corpus.seed}:block:{block}")
        for _ in range(BLOCK_ROWS):
            name, classification, size = _MAKERS[_kind(rng)](corpus, rng)
            seeders, leechers = _swarm(rng)
            release = Release(
                name, classification, size, seeders, leechers, _published(rng), rng.randbytes(20)
            )
            if start <= row < stop:
                yield release
            row += 1
            if row >= stop:
                return
        block += 1


def entries(corpus: Corpus, stop: int, *, start: int = 0) -> Iterator[Entry]:
    """:func:`releases` as catalog entries, ready for ``catalog.add`` or ``bulk.load``."""
    for release in releases(corpus, stop, start=start):
        yield release.entry()


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 20
    corpus = Corpus(rows=max(count, 1000))
    for release in releases(corpus, count):
        c = release.classification
        print(
            f"{release.name:<90} {c.content_type.value:<8} year={c.year} s={c.season} "
            f"e={c.episode} res={c.resolution} seeders={release.seeders}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
