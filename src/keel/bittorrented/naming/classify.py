"""Classify a torrent by its name and files (bitmagnet's content types) and screen banned names.

The name is read by :mod:`keel.bittorrented.naming.release_name` (one regex pass, ~40 µs; guessit,
which this module used first, took ~10 ms and capped ingest near 100 rows/s: ADR 0010). A
name reader, guessit as much as ours, calls nearly everything a movie, so the name decides
only between movie and tv_show, and only given video evidence: video files, or a season,
resolution, video codec or a source only video comes from in the name (an episode number alone
is not enough: ``Cyberpunk.2077`` is "episode 2077"). Other types come from the files'
extensions, weighted by size, then from keywords in the name, then from its shape: an audio
codec or the music scene's ``Artist-Album-WEB-2019-GROUP`` is music, a version number
(``v2.1``, ``24.04.1``) software.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from anyascii import anyascii

from keel.bittorrented.naming import release_name
from keel.bittorrented.naming.release_name import ReleaseName
from keel.bittorrented.torrent.values import TorrentFile

_WORD = re.compile(r"[a-z0-9]+")


class ContentType(StrEnum):
    """What a torrent holds; the values are bitmagnet's ``content_type`` strings."""

    MOVIE = "movie"
    TV_SHOW = "tv_show"
    MUSIC = "music"
    EBOOK = "ebook"
    COMIC = "comic"
    AUDIOBOOK = "audiobook"
    GAME = "game"
    SOFTWARE = "software"
    XXX = "xxx"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classification:
    """A torrent's content type and what its name says about the release.

    Video fields (season, episode, resolution, codec, group) are set only for video types;
    a multi-episode or multi-season release keeps its first number.
    """

    content_type: ContentType
    title: str | None = None
    year: int | None = None
    season: int | None = None
    episode: int | None = None
    resolution: str | None = None
    video_codec: str | None = None
    release_group: str | None = None


_VIDEO = ContentType.MOVIE  # stands for "video" until the name picks movie or tv_show


def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EXTENSIONS: dict[str, ContentType] = {
    extension: kind
    for kind, extensions in (
        (_VIDEO, "mkv mp4 avi m4v mov wmv flv webm ts m2ts mts mpg mpeg vob ogv 3gp divx rmvb"),
        (ContentType.MUSIC, "mp3 flac m4a aac ogg oga opus wav ape alac wv wma aiff aif dsf mka"),
        (ContentType.AUDIOBOOK, "m4b aax"),
        (ContentType.EBOOK, "epub mobi azw azw3 pdf djvu fb2 lit"),
        (ContentType.COMIC, "cbr cbz cb7 cbt"),
        (ContentType.SOFTWARE, "exe msi dmg pkg deb rpm apk appimage iso snap flatpak"),
        (ContentType.GAME, "nsp xci nds 3ds cia gba gbc gb nes sfc smc n64 z64 wbfs wad rvz"),
    )
    for extension in _vocabulary(extensions)
}
# Name keywords, checked in this order when neither files nor the name show video.
_KEYWORDS: tuple[tuple[ContentType, frozenset[str]], ...] = (
    (ContentType.AUDIOBOOK, _vocabulary("audiobook audiobooks audible unabridged m4b")),
    (ContentType.COMIC, _vocabulary("comic comics cbr cbz")),
    (ContentType.EBOOK, _vocabulary("epub mobi azw3 ebook ebooks pdf fb2 djvu")),
    (
        ContentType.GAME,
        _vocabulary(
            "gog codex fitgirl skidrow plaza cpy empress dodi elamigos tenoke razor1911 "
            "goty nsw ps4 ps5"
        ),
    ),
    (
        ContentType.SOFTWARE,
        _vocabulary(
            "x64 x86 win64 win32 amd64 arm64 windows macos keygen portable multilingual "
            "setup installer"
        ),
    ),
    (
        ContentType.MUSIC,
        _vocabulary(
            "flac mp3 alac 320kbps discography album lossless 24bit 16bit vinyl soundtrack ost"
        ),
    ),
)
# The music scene names releases Artist-Album-(TAGS)-SOURCE-YEAR-GROUP, with no spaces or dots.
_SCENE_MUSIC = re.compile(
    r"[^\s.]+-(?:\([^\s.]*\)-)*(?:WEB|CD|CDS|CDM|CDR|VINYL|VLS|LP|EP|FLAC|SAT|DAB|FM|LINE|DVB)"
    r"-(?:19|20)\d\d-[^\s.]+$",
    re.IGNORECASE,
)
_XXX = _vocabulary("xxx porn porno")
_VIDEO_TYPES = (ContentType.MOVIE, ContentType.TV_SHOW, ContentType.XXX)


def classify(name: str, files: Sequence[TorrentFile] = ()) -> Classification:
    """Classify a torrent from its name and (possibly capped) file list.

    Never raises for any text; a name with no recognisable parts is classified from files and
    keywords alone. Costs tens of microseconds (one :func:`release_name.parse`).
    """
    parsed = release_name.parse(name)
    words = frozenset(_words(name))
    dominant = _dominant(files) if files else _EXTENSIONS.get(_extension(name))
    video_in_name = any(
        value is not None
        for value in (parsed.season, parsed.resolution, parsed.video_codec, parsed.video_source)
    )

    if words & _XXX:
        content_type = ContentType.XXX
    elif dominant is _VIDEO or (dominant is None and video_in_name):
        content_type = ContentType.TV_SHOW if _is_episode(parsed) else ContentType.MOVIE
    elif dominant is not None:
        content_type = _refine(dominant, words)
    else:
        content_type = next((kind for kind, keys in _KEYWORDS if words & keys), None) or _shape(
            name, parsed
        )

    if content_type not in _VIDEO_TYPES:
        return Classification(content_type, title=_full_title(parsed), year=parsed.year)
    return Classification(
        content_type,
        title=parsed.title,
        year=parsed.year,
        season=parsed.season,
        episode=parsed.episode,
        resolution=parsed.resolution,
        video_codec=parsed.video_codec,
        release_group=parsed.release_group,
    )


def is_banned(name: str, banned_keywords: Iterable[str]) -> bool:
    """True when ``name`` contains any keyword as whole words, ignoring case and accents.

    Names are folded to ASCII and split on anything not a letter or digit, so ``Ｋéy.WORD``
    matches ``key word``; runs of single letters are also read joined (``a.b.c`` as ``abc``).
    """
    needles, lengths = _banned_index(tuple(banned_keywords))
    if not needles:
        return False
    words = _words(name)
    for form in (words, _join_letters(words)):
        for length in lengths:
            for start in range(len(form) - length + 1):
                if " ".join(form[start : start + length]) in needles:
                    return True
    return False


@functools.lru_cache(maxsize=64)
def _banned_index(keywords: tuple[str, ...]) -> tuple[frozenset[str], tuple[int, ...]]:
    """Each keyword folded to its words, and the word counts among them: a name is then checked
    by its runs of those lengths, whatever the number of keywords (a list of 300 had cost
    ~220 µs a name when each keyword was folded and searched for in turn)."""
    needles = frozenset(" ".join(words) for keyword in keywords if (words := _words(keyword)))
    return needles, tuple(sorted({needle.count(" ") + 1 for needle in needles}))


def _dominant(files: Sequence[TorrentFile]) -> ContentType | None:
    """The kind of the known extensions holding the most bytes (zero-byte files weigh 1)."""
    weights: defaultdict[ContentType, int] = defaultdict(int)
    for file in files:
        kind = _EXTENSIONS.get(_extension(file.path))
        if kind is not None:
            weights[kind] += max(file.size, 1)
    return max(weights, key=weights.__getitem__) if weights else None


def _refine(kind: ContentType, words: frozenset[str]) -> ContentType:
    """Let name keywords split what extensions cannot: audiobooks in MP3, games on ISO."""
    if kind is ContentType.MUSIC and words & _keywords(ContentType.AUDIOBOOK):
        return ContentType.AUDIOBOOK
    if kind is ContentType.SOFTWARE and words & _keywords(ContentType.GAME):
        return ContentType.GAME
    if kind is ContentType.EBOOK and words & _keywords(ContentType.COMIC):
        return ContentType.COMIC
    return kind


def _shape(name: str, parsed: ReleaseName) -> ContentType:
    """The last resort: an audio codec or the scene's music naming, then a version number."""
    if parsed.audio_codec or _SCENE_MUSIC.match(name):
        return ContentType.MUSIC
    return ContentType.SOFTWARE if parsed.version else ContentType.UNKNOWN


def _keywords(kind: ContentType) -> frozenset[str]:
    return next(keys for candidate, keys in _KEYWORDS if candidate is kind)


def _is_episode(parsed: ReleaseName) -> bool:
    return parsed.season is not None or parsed.episode is not None or parsed.dated


def _extension(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _full_title(parsed: ReleaseName) -> str | None:
    # Outside video, "Artist - Album" is one title, not a title and an alternative.
    title, alternative = parsed.title, parsed.alternative_title
    return f"{title} - {alternative}" if title and alternative else title


def _words(text: str) -> list[str]:
    return _WORD.findall(anyascii(text).lower())


def _join_letters(words: list[str]) -> list[str]:
    joined: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1:
            run += word
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(word)
    if run:
        joined.append(run)
    return joined
