"""Read a release name (``Show.S01E02.720p.WEB.h264-GRP``) into its parts, in one regex pass.

Release names follow a few conventions: the title comes first and ends at the first *marker*
(a year, ``S01E02``, ``1080p``, a source, a codec, a version); a scene group trails after a
dash, or sits in brackets at either end. :func:`parse` scans the name once for markers and
reads the parts around them, which costs tens of microseconds where guessit costs ~10 ms.
Field values follow guessit's spelling (``screen_size`` "2160p", codec "H.264"), so callers
written against guessit read the same values.

What it does not try: episode titles, languages, editions, anything guessit calls ``other``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# A four-digit number above this is a title or an episode (Cyberpunk 2077), not a year; fixed
# at import so a process parses the same name the same way all day.
_LATEST_YEAR = datetime.now(UTC).year + 1
# Names are short; a pathological one is cut rather than scanned in full.
_MAX_CHARS = 512

_CONTAINERS = frozenset(
    "mkv mp4 avi m4v mov wmv flv webm ts m2ts mpg mpeg vob ogv 3gp divx rmvb iso img "
    "mp3 flac m4a m4b aac ogg opus wav ape wv wma epub mobi azw3 pdf djvu fb2 "
    "cbr cbz cb7 cbt exe msi dmg pkg deb rpm apk zip rar 7z nfo srt sub idx torrent".split()
)

_VIDEO_CODECS = {
    "x264": "H.264", "h264": "H.264", "h.264": "H.264", "avc": "H.264", "avc1": "H.264",
    "x265": "H.265", "h265": "H.265", "h.265": "H.265", "hevc": "H.265",
    "xvid": "Xvid", "divx": "DivX", "av1": "AV1", "vp9": "VP9", "vp8": "VP8",
    "mpeg2": "MPEG-2", "mpeg-2": "MPEG-2", "vc1": "VC-1", "vc-1": "VC-1",
}  # fmt: skip
_RESOLUTION_WORDS = {"4k": "2160p", "uhd": "2160p", "2160": "2160p", "8k": "4320p"}
_COUNTRIES = frozenset({"us", "uk"})
_PART_NUMBERS = "one|two|three|four|five|i|ii|iii|iv|v|[1-9]"

_B, _E = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"  # whole-word edges, punctuation allowed
_MARKERS = re.compile(
    _B
    + r"(?:"
    + r"(?P<sxe>s\d{1,3}[ ._-]?e\d{1,4}(?:[ ._-]?(?:e|-e?)\d{1,4})*)"
    + r"|(?P<nxn>\d{1,2}x\d{2,3})"
    + r"|(?P<seasons>s\d{1,3}(?:[ ._-]?-[ ._-]?s?\d{1,3})?)"
    + r"|(?P<season_word>(?:season|saison|series)[ ._-]?\d{1,3})"
    + r"|(?P<episode_word>(?:episode|ep)[ ._-]?\d{1,4})"
    + r"|(?P<date>(?:19|20)\d\d[._-]\d\d[._-]\d\d)"
    + r"|(?P<resolution>\d{3,4}[pi]|\d{3,4}x\d{3,4}|4k|8k|uhd)"
    + r"|(?P<video_codec>[xh][ .]?26[45]|hevc|avc1?|xvid|divx|av1|vp[89]|mpeg-?2|vc-?1)"
    + r"|(?P<audio_codec>dd[p+]?[ .]?[257][ .][01]|e?ac-?3|aac(?:[ .]?[257][ .][01])?|dts(?:-?hd)?"
    + r"|truehd|atmos|flac|mp3|opus|lpcm|\d{3}[ ]?kbps|[257]\.[01]ch)"
    + r"|(?P<source>blu-?ray|b[dr]rip|bd(?:25|50|remux)?|remux|web[ .-]?dl|web[ .-]?rip|web"
    + r"|hdtv|pdtv|sdtv|hdrip|dvd(?:rip|scr|r|5|9)?|hd-?dvd|hdcam|cam(?:rip)?|telesync|hd-?ts"
    + r"|amzn|dsnp|hmax|atvp)"
    + r"|(?P<other>complete|extended|unrated|uncut|remastered|repack|proper|internal|limited"
    + r"|dubbed|subbed|multi|10-?bit|8-?bit|hdr(?:10)?|dv|imax|directors[ ._]cut|criterion)"
    + r"|(?P<format>m4b|epub|mobi|azw3|pdf|djvu|fb2|cbr|cbz|iso)"
    + r"|(?P<part>part[ ._](?:"
    + _PART_NUMBERS
    + r"))"
    + r"|(?P<version>v\d+(?:\.\d+)*|\d+(?:\.\d+){1,3})"
    + r"|(?P<year>(?:19|20)\d\d)"
    + r"|(?<!#)(?P<number>\d{1,4})"  # ``Batman #1`` is a title
    + r")"
    + _E,
    re.IGNORECASE,
)
_CRC = re.compile(r"[0-9A-Fa-f]{8}$")  # anime names end in a checksum, not a group
_DIGITS = re.compile(r"\d+")
_TRAILING_GROUP = re.compile(r"-([A-Za-z0-9][A-Za-z0-9_]*)\s*(?:\[[^\]]*\])?\s*$")
_BRACKETED = re.compile(r"[\[(]([^\[\]()]*)[\])]")
_LEADING_TAG = re.compile(r"^\s*(?:\[([^\]]*)\]|www\.[^\s]+\s+-\s+)\s*")
_SEPARATORS = re.compile(r"[._#\s]+")
_EDGE_JUNK = " -–([{+,;:"


@dataclass(frozen=True, slots=True)
class ReleaseName:
    """What a release name says; ``None`` where it says nothing.

    ``title`` ends at the first marker or at `` - `` (what follows a dash, e.g. an album after
    its artist, is ``alternative_title``). Numbers are the first of a range (``S01-S03`` is 1).
    ``dated`` is true for a daily show's air date (``2024.03.14``).
    """

    title: str | None = None
    alternative_title: str | None = None
    year: int | None = None
    season: int | None = None
    episode: int | None = None
    dated: bool = False
    resolution: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    release_group: str | None = None


def parse(name: str) -> ReleaseName:
    """Read ``name``'s title, year, season/episode, resolution, codecs and group.

    Never raises for any text. A path is read from its last part, with the title, year and
    season taken from the folders above when the last part lacks them.
    """
    parts = [part for part in re.split(r"[/\\]", name[:_MAX_CHARS]) if part.strip()]
    if not parts:
        return ReleaseName()
    found = _parse_part(_strip_container(parts[-1]))
    for folder in reversed(parts[:-1]):
        if found.title and found.year is not None and found.season is not None:
            break
        above = _parse_part(folder)
        found = ReleaseName(
            title=found.title or above.title,
            alternative_title=found.alternative_title if found.title else above.alternative_title,
            year=found.year if found.year is not None else above.year,
            season=found.season if found.season is not None else above.season,
            episode=found.episode,
            dated=found.dated,
            resolution=found.resolution,
            video_codec=found.video_codec,
            audio_codec=found.audio_codec,
            release_group=found.release_group,
        )
    return found


def _strip_container(part: str) -> str:
    stem, dot, extension = part.rpartition(".")
    return stem if dot and extension.lower() in _CONTAINERS and stem.strip() else part


def _parse_part(text: str) -> ReleaseName:  # noqa: C901 - one pass over the markers
    leading_group: str | None = None
    start = 0
    tag = _LEADING_TAG.match(text)
    if tag:
        leading_group = tag.group(1)
        start = tag.end()

    title_end: int | None = None
    marker_end = 0
    year = season = episode = None
    resolution = video_codec = audio_codec = None
    dated = False
    for match in _MARKERS.finditer(text, start):
        kind, value = match.lastgroup, match.group()
        if kind == "year":
            # A year opening the name is its title (``1917.2019.1080p``, ``2012``).
            if match.start() == start or year is not None or int(value) > _LATEST_YEAR:
                if match.start() == start or title_end is not None:
                    continue
                kind = "number"
            else:
                year = int(value)
        if kind == "number":
            # A bare number right after the title is an episode (anime ``Show - 24``,
            # guessit's reading of ``Cyberpunk.2077``); later, or first, it is noise.
            if title_end is not None or match.start() == start:
                continue
            episode = int(value)
        elif kind in ("sxe", "nxn"):
            numbers = _DIGITS.findall(value)
            if season is None:
                season, episode = int(numbers[0]), int(numbers[1])
        elif kind in ("seasons", "season_word"):
            if season is None:
                season = int(_DIGITS.findall(value)[0])
        elif kind == "episode_word":
            if episode is None:
                episode = int(_DIGITS.findall(value)[0])
        elif kind == "date":
            dated = True
        elif kind == "resolution":
            resolution = resolution or _resolution(value)
        elif kind == "video_codec":
            video_codec = video_codec or _VIDEO_CODECS.get(value.lower().replace(" ", ""))
        elif kind == "audio_codec":
            audio_codec = audio_codec or value
        elif kind == "version" and match.start() == start:
            continue
        marker_end = match.end()
        if title_end is None:
            title_end = match.start()

    title, alternative = _title(text[start:title_end] if title_end is not None else text[start:])
    return ReleaseName(
        title=title,
        alternative_title=alternative,
        year=year,
        season=season,
        episode=episode,
        dated=dated,
        resolution=resolution,
        video_codec=video_codec,
        audio_codec=audio_codec,
        release_group=_clean(leading_group or "") or _group(text, title_end, marker_end),
    )


def _resolution(value: str) -> str | None:
    lowered = value.lower()
    if lowered in _RESOLUTION_WORDS:
        return _RESOLUTION_WORDS[lowered]
    if "x" in lowered:
        return f"{lowered.split('x', 1)[1]}p"
    return lowered


def _title(head: str) -> tuple[str | None, str | None]:
    # Brackets inside the title are tags or original titles (``Le Prestige (The Prestige)``).
    head = _BRACKETED.sub(" ", head)
    title, dash, rest = head.partition(" - ")
    cleaned = _clean(title)
    words = cleaned.split(" ")
    if len(words) > 1 and words[-1].lower() in _COUNTRIES:
        cleaned = " ".join(words[:-1])
    alternative = _clean(rest) if dash else ""
    if not cleaned:
        return (alternative or None), None
    return cleaned, (alternative or None)


def _clean(text: str) -> str:
    return _SEPARATORS.sub(" ", text).strip(_EDGE_JUNK)


def _group(text: str, title_end: int | None, marker_end: int) -> str | None:
    """The scene group after the last dash, or in the last brackets, once a marker was seen."""
    if title_end is None:
        return None
    trailing = _TRAILING_GROUP.search(text, title_end)
    # ``WEB-DL`` ends in a dash and a word too: a marker reaching the end has no group.
    if trailing and marker_end < trailing.end(1) and not _MARKERS.fullmatch(trailing.group(1)):
        return trailing.group(1)
    stripped = text.rstrip()
    if stripped.endswith("]"):
        inner = stripped[stripped.rfind("[") + 1 : -1].strip()
        if inner and " " not in inner and not _MARKERS.fullmatch(inner) and not _CRC.match(inner):
            return inner
    return None
