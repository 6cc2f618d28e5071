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

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime

# A four-digit number above this is a title or an episode (Cyberpunk 2077), not a year; fixed
# at import so a process parses the same name the same way all day.
_LATEST_YEAR = datetime.now(UTC).year + 1
# Names are short; a pathological one is cut rather than scanned in full.
_MAX_CHARS = 512


def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CONTAINERS = _vocabulary(
    "mkv mp4 avi m4v mov wmv flv webm ts m2ts mpg mpeg vob ogv 3gp divx rmvb iso img "
    "mp3 flac m4a m4b aac ogg opus wav ape wv wma epub mobi azw3 pdf djvu fb2 "
    "cbr cbz cb7 cbt exe msi dmg pkg deb rpm apk zip rar 7z nfo srt sub idx torrent"
)

_VIDEO_CODECS = {
    "x264": "H.264", "h264": "H.264", "h.264": "H.264", "avc": "H.264", "avc1": "H.264",
    "x265": "H.265", "h265": "H.265", "h.265": "H.265", "hevc": "H.265",
    "xvid": "Xvid", "divx": "DivX", "av1": "AV1", "vp9": "VP9", "vp8": "VP8",
    "mpeg2": "MPEG-2", "mpeg-2": "MPEG-2", "vc1": "VC-1", "vc-1": "VC-1",
}  # fmt: skip
_BARE_RESOLUTIONS = frozenset({"480", "576", "720", "1080", "1440", "2160"})  # after a marker
_RESOLUTION_WORDS = {"4k": "2160p", "uhd": "2160p", "2160": "2160p", "8k": "4320p"}
# guessit's names for the sources that only video comes from (``WEB`` alone tags music too).
_VIDEO_SOURCES = (
    ("bluray", "Blu-ray"), ("bd", "Blu-ray"), ("brrip", "Blu-ray"), ("remux", "Blu-ray"),
    ("web", "Web"), ("hdtv", "HDTV"), ("pdtv", "PDTV"), ("sdtv", "SDTV"), ("hdrip", "HD Rip"),
    ("hddvd", "HD-DVD"), ("dvd", "DVD"), ("hdcam", "HD Camera"), ("cam", "Camera"),
    ("telesync", "Telesync"), ("hdts", "HD Telesync"),
)  # fmt: skip
# Season and episode in the languages release names are written in.
_SEASON_WORDS = (
    "seasons?|saison|series|temporada|temp|tem|stagione|seizoen|staffel|sezon|säsong|évad|сезон"
)
_EPISODE_WORDS = (
    "episode|épisode|episodio|episodul|ep|folge|odcinek|avsnitt|aflevering|bolum|capitulo|cap"
    "|серия|эпизод"
)
_EPISODE_AFTER_WORDS = "bolum|bölüm|rész|серия"  # written after the number: ``7. Bölüm``
_COUNTRIES = frozenset({"US", "UK"})  # as written: ``This.is.Us`` is a title
_PART_NUMBERS = "one|two|three|four|five|i|ii|iii|iv|v|vi|vii|viii|ix|x|[1-9]"

# Marker kinds, tried in this order at each place in the name (so ``S01E02`` wins over ``S01``
# and a codec over a bare number); each must stand as whole words.
_MARKER_KINDS = (
    ("sxe", r"[st]\d{1,4}[ ._-]?x?e\d{1,4}(?:[ ._-]?(?:e|-e?)\d{1,4})*"),
    ("nxn", r"\d{1,2}(?:[x×]| [x×] )\d{1,3}(?:x\d{1,3})*"),
    ("seasons", r"s\d{1,4}(?:d\d{1,2})?(?:[ ._-]?-[ ._-]?s?\d{1,3})?"),
    (
        "season_word",
        rf"(?:{_SEASON_WORDS})[ ._-]?\d{{1,3}}(?:[ ._]?of[ ._]?\d{{1,3}})?"
        rf"|\d{{1,2}}(?:-?[a-zа-яª]{{1,2}})?\.?[ ._-]?(?:{_SEASON_WORDS})",
    ),
    (
        "episode_word",
        rf"(?:{_EPISODE_WORDS})[ ._-]{{0,2}}\d{{1,4}}(?:v\d)?|e\d{{1,4}}"
        rf"|\d{{1,3}}(?:-?[a-zа-я]{{1,2}})?\.?[ ._-]?(?:{_EPISODE_AFTER_WORDS})"
        r"|\d{1,2}[ ._]?of[ ._]?\d{1,2}",
    ),
    ("date", r"(?:19|20)\d\d[._-]\d\d[._-]\d\d"),
    ("resolution", r"\d{3,4}[pi](?:24|25|30|50|60)?|\d{3,4}[x*]\d{3,4}|4k|8k|uhd"),
    ("video_codec", r"[xh][ .]?26[45]|hevc|avc1?|xvid|divx|av1|vp[89]|mpeg-?2|vc-?1"),
    (
        "audio_codec",
        r"dd[p+]?[ .]?[257][ .][01]|e?ac-?3d?|aac(?:[ .]?[257][ .][01])?|dts(?:-?hd)?|truehd"
        r"|atmos|flac|mp3|lpcm|\d{3}[ ]?kbps|[257]\.[01]ch",
    ),
    (
        "video_source",
        r"blu-?ray|b[dr]-?rip|bd(?:25|50|remux)?|remux|web[ .-]?dl|web[ .-]?rip|hdtv|pdtv|sdtv"
        r"|hdrip|dvd(?:rip|scr|r|5|9)?|hd-?dvd|hdcam|cam(?:rip)?|telesync|hd-?ts",
    ),
    ("source", r"web|amzn|dsnp|hmax|atvp"),
    ("weak_audio", r"opus"),
    (
        "other",
        r"complete|extended|unrated|uncut|remastered|repack|proper|internal|limited|dubbed"
        r"|subbed|multi|10-?bit|8-?bit|hdr(?:10)?|dv|imax|directors?[ ._]cut|criterion|hybrid"
        r"|integrale|intégrale|coffret|convert|stv|readnfo|nfofix|doku|3d|theatrical|hdlight|[bd]r(?:rip)?mux|pal|ntsc",
    ),
    (
        "language",
        r"(?:true)?french|german|spanish|italian|russian|vostfr|vost|castellano|latino|hindi"
        r"|swissgerman|vff|vfq|vfi|dual|dl|dublado|legendado|nordic|swedish|rus|eng|ita|ger|spa|fre",
    ),
    ("format", r"m4b|epub|mobi|azw3|pdf|djvu|fb2|cbr|cbz|iso"),
    ("part", rf"part[ ._](?:{_PART_NUMBERS})"),
    ("version", r"v\d+(?:\.\d+)*|\d{1,4}(?:\.\d{1,3}){1,3}"),
    ("year", r"(?:19|20)\d\d"),
    ("number", r"(?<!#)(?<![A-Za-z]-)\d{1,4}(?:v\d)?"),  # ``Batman #1``, ``Adam-12`` are titles
)
_MARKERS = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _MARKER_KINDS)
    + r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_CRC = re.compile(r"[0-9A-Fa-f]{8}$")  # anime names end in a checksum, not a group
_DIGITS = re.compile(r"\d+")
_TRAILING_GROUP = re.compile(r"-([A-Za-z0-9][A-Za-z0-9_]*)\s*(?:\[[^\]]*\])?\s*$")
_BRACKETED = re.compile(r"[\[(]([^\[\]()]*)[\])]")
_LEADING_TAG = re.compile(r"^\s*(?:\[([^\]]*)\]|www\.[^\s]+\s+-\s+)\s*")
_ACRONYM = re.compile(r"(?<![A-Za-z0-9])((?:[A-Za-z]\.){2,}[A-Za-z]?\.?)")
_LEADING_NUMBER_END = re.compile(r"\s*-\s*|\.\s+|-(?=[A-Za-z])")  # ``003. Title``, ``03-Title``
_SEPARATORS = re.compile(r"[._#\s]+")
_EDGE_JUNK = " -–([{+,;:"


@dataclass(frozen=True, slots=True)
class ReleaseName:
    """What a release name says; ``None`` where it says nothing.

    ``title`` ends at the first marker or at `` - `` (what follows a dash, e.g. an album after
    its artist, is ``alternative_title``). Numbers are the first of a range (``S01-S03`` is 1).
    ``dated`` is true for a daily show's air date (``2024.03.14``). ``video_source`` is set
    only for sources no audio comes from (Blu-ray, HDTV, WEB-DL; not a bare ``WEB``);
    ``version`` is a software version as written (``v2.1``, ``24.04.1``).
    """

    title: str | None = None
    alternative_title: str | None = None
    year: int | None = None
    season: int | None = None
    episode: int | None = None
    dated: bool = False
    resolution: str | None = None
    video_codec: str | None = None
    video_source: str | None = None
    audio_codec: str | None = None
    release_group: str | None = None
    version: str | None = None


def parse(name: str) -> ReleaseName:
    """Read ``name``'s title, year, season/episode, resolution, codecs and group.

    Never raises for any text. A path is read from its last part; the nearest folder that
    carries markers gives the reading when the last part has none (scene file names such as
    ``dmd-aw.avi`` say nothing), and the folders fill a title, year, season or air date the
    last part lacks (``Doctor Who/Season 06/E13 - The Wedding.mkv``).
    """
    parts = [part for part in re.split(r"[/\\]", name[:_MAX_CHARS]) if part.strip()]
    if not parts:
        return ReleaseName()
    found, marked = _parse_part(_strip_container(parts[-1]))
    for folder in reversed(parts[:-1]):
        if found.title and marked and found.year is not None and found.season is not None:
            break
        above, above_marked = _parse_part(folder)
        if not marked and above_marked:
            # ``Friends S03/Friends - 07 - The One.mkv``: the file's number is the episode.
            episode = above.episode if above.episode is not None else found.episode
            found, marked = dataclasses.replace(above, episode=episode), True
        elif marked and (above_marked or not found.title):
            found = _fill(found, above)
    return found


def _fill(found: ReleaseName, above: ReleaseName) -> ReleaseName:
    """``found`` with the title, year, season and air date it lacks taken from a folder."""
    return ReleaseName(
        title=found.title or above.title,
        alternative_title=found.alternative_title if found.title else above.alternative_title,
        year=found.year if found.year is not None else above.year,
        season=found.season if found.season is not None else above.season,
        episode=found.episode,
        dated=found.dated or above.dated,
        resolution=found.resolution,
        video_codec=found.video_codec,
        video_source=found.video_source,
        audio_codec=found.audio_codec,
        release_group=found.release_group,
        version=found.version,
    )


def _strip_container(part: str) -> str:
    stem, dot, extension = part.rpartition(".")
    return stem if dot and extension.lower() in _CONTAINERS and stem.strip() else part


# Markers that are also title words (``The.Girl.in.the.Spiders.Web.2019``, ``The Italian
# Job``): they end the title only when another marker, not a year, follows at once.
_WEAK = frozenset({"source", "language", "weak_audio"})
_TITLE_WHEN_FIRST = _WEAK | {"version"}  # ``Web.Therapy.S01``, ``1.0.Launch``
_EPISODIC = frozenset({"sxe", "nxn", "seasons", "season_word", "episode_word"})
_GAP = re.compile(r"[\s._\-\[\]()]*")


class _Scan:
    """The fields one pass over a name's markers has found so far."""

    def __init__(self, text: str, start: int, leading_group: str | None) -> None:
        self.text, self.leading_group = text, leading_group
        self.title_start, self.title_end, self.first_kind = start, -1, ""
        self.weak: re.Match[str] | None = None
        self.pending: re.Match[str] | None = None  # a bare number that may yet be title
        self.marker_end = 0
        self.year: int | None = None
        self.season: int | None = None
        self.episode: int | None = None
        self.dated = False
        self.resolution: str | None = None
        self.video_codec: str | None = None
        self.video_source: str | None = None
        self.audio_codec: str | None = None
        self.version: str | None = None

    def see(self, match: re.Match[str]) -> None:
        """Take one marker: read its field, and end the title here unless it may be a title
        word (a weak marker or a bare number waits for the next marker to decide)."""
        kind = self.read(match)
        if kind is None:
            return
        self.marker_end = match.end()
        if self.title_end >= 0:
            return
        if self.pending is not None:
            # ``The.100.S01E13``: a number right before the episode is the title's.
            adjacent = _GAP.fullmatch(self.text, self.pending.end(), match.start()) is not None
            if not (adjacent and kind in _EPISODIC):
                self.settle()
                return
            self.pending = None
        if kind == "number":
            self.pending = match
            return
        if self.weak is not None:
            adjacent = _GAP.fullmatch(self.text, self.weak.end(), match.start()) is not None
            if adjacent and kind != "year":
                self.end_title(self.weak)
                return
            self.weak = None
        if kind in _WEAK and "-" not in self.text[match.start() - 1 : match.start()]:
            self.weak = match
        else:
            self.end_title(match)

    def end_title(self, match: re.Match[str]) -> None:
        self.title_end, self.first_kind = match.start(), match.lastgroup or ""

    def read(self, match: re.Match[str]) -> str | None:
        kind, value = match.lastgroup or "", match.group()
        first = match.start() == self.title_start
        titled = self.title_end >= 0
        if kind == "year":
            if first or self.year is not None or int(value) > _LATEST_YEAR:
                # A year opening the name is its title (``1917.2019.1080p``, ``2012``).
                if first or titled:
                    return None
                kind = "number"
            else:
                self.year = int(value)
        if kind == "number":
            return self.number(match, first=first, titled=titled)
        if first and kind in _TITLE_WHEN_FIRST:
            return None
        if kind in ("sxe", "nxn"):
            numbers = _DIGITS.findall(value)
            if self.season is None:
                self.season, self.episode = int(numbers[0]), int(numbers[1])
        elif kind in ("seasons", "season_word"):
            if self.season is None:
                self.season = int(_DIGITS.findall(value)[0])
        elif kind == "episode_word":
            number = _DIGITS.findall(value)[0]
            if value[:3].lower() == "cap" and len(number) >= 3:
                # Spanish packs number chapters by season: ``Cap.102`` is 1x02.
                self.season = self.season or int(number[:-2])
                self.episode = self.episode or int(number[-2:])
            elif self.episode is None:
                self.episode = int(number)
        elif kind == "date":
            self.dated = True
        elif kind == "resolution":
            self.resolution = self.resolution or _resolution(value)
        elif kind == "video_codec":
            codec = _VIDEO_CODECS.get(value.lower().replace(" ", ""))
            self.video_codec = self.video_codec or codec
        elif kind == "audio_codec":
            self.audio_codec = self.audio_codec or value
        elif kind == "video_source":
            self.video_source = self.video_source or _video_source(value)
        elif kind == "version":
            self.version = self.version or value
        return kind

    def number(self, match: re.Match[str], *, first: bool, titled: bool) -> str | None:
        value = match.group()
        leads = self.leading_group is not None or _LEADING_NUMBER_END.match(self.text, match.end())
        if first and leads and self.episode is None:
            # ``[Group] 01 - Title``, ``003. Title``: the episode before the title.
            self.episode = int(_DIGITS.findall(value)[0])
            self.title_start = match.end()
            return None
        if titled and value in _BARE_RESOLUTIONS:  # ``Movie 2013 1080 x265``
            self.resolution = self.resolution or f"{value}p"
            return "resolution"
        # A bare number right after the title is an episode (``Show - 24``, guessit's
        # ``Cyberpunk.2077``), but one digit is a sequel (``Bad Santa 2 2016``) unless a dash
        # sets it apart; later, or first, a number is noise.
        if titled or first or self.weak is not None:
            return None
        if len(value) == 1 and not self.text[: match.start()].rstrip(" ._").endswith("-"):
            return None
        return "number"

    def settle(self) -> None:
        """The pending bare number ends the title as an episode: ``Show.Name.102`` and
        ``FooBar.0307`` pack a season before it (guessit's reading), but a fansub's number
        (``[Group] Show - 102``) or one with a version (``312v1``) is the episode alone."""
        if self.pending is None:
            return
        value = self.pending.group()
        packed = value.isdigit() and (len(value) == 3 or (len(value) == 4 and value[0] == "0"))
        if self.episode is None:
            if packed and self.leading_group is None and self.season is None:
                self.season, self.episode = int(value[:-2]), int(value[-2:])
            else:
                self.episode = int(_DIGITS.findall(value)[0])
        self.end_title(self.pending)
        self.pending = None


def _parse_part(text: str) -> tuple[ReleaseName, bool]:
    """One path part read, and whether a marker (not a bare number) ended its title."""
    leading_group: str | None = None
    start = 0
    tag = _LEADING_TAG.match(text)
    if tag:
        leading_group = tag.group(1)
        start = tag.end()
    scan = _Scan(text, start, leading_group)
    for match in _MARKERS.finditer(text, start):
        scan.see(match)
    scan.settle()
    if scan.title_end < 0 and scan.weak is not None and scan.marker_end > scan.weak.end():
        scan.end_title(scan.weak)
    marked = scan.title_end >= 0
    title_end = scan.title_end if marked else len(text)
    title, alternative = _title(
        text[scan.title_start : title_end], episodic=scan.first_kind in _EPISODIC
    )
    group = _clean(leading_group or "") or (
        _group(text, title_end, scan.marker_end) if marked else None
    )
    found = ReleaseName(
        title=title,
        alternative_title=alternative,
        year=scan.year,
        season=scan.season,
        episode=scan.episode,
        dated=scan.dated,
        resolution=scan.resolution,
        video_codec=scan.video_codec,
        video_source=scan.video_source,
        audio_codec=scan.audio_codec,
        release_group=group,
        version=scan.version,
    )
    # A bare number alone (``160725_02.mkv``) does not make an obfuscated file name a reading.
    return found, marked and scan.first_kind != "number"


def _video_source(value: str) -> str:
    lowered = value.lower().replace("-", "").replace(" ", "").replace(".", "")
    for prefix, source in _VIDEO_SOURCES:
        if lowered.startswith(prefix):
            return source
    return value


def _resolution(value: str) -> str | None:
    lowered = value.lower()
    if lowered in _RESOLUTION_WORDS:
        return _RESOLUTION_WORDS[lowered]
    for sign in "x*":
        if sign in lowered:
            return f"{lowered.split(sign, 1)[1]}p"
    return lowered


def _title(head: str, *, episodic: bool) -> tuple[str | None, str | None]:
    # Brackets inside the title are tags or original titles (``Le Prestige (The Prestige)``).
    head = _BRACKETED.sub(" ", head)
    title, dash, rest = head.partition(" - ")
    cleaned = _clean(title)
    words = cleaned.split(" ")
    # ``The.Office.US.S05E14`` is The Office; ``It.Ends.With.Us.2024`` keeps its last word.
    if episodic and len(words) > 1 and words[-1] in _COUNTRIES:
        cleaned = " ".join(words[:-1])
    elif cleaned.lower().endswith(", the"):  # ``Simpsons, The``
        cleaned = f"{cleaned[-3:]} {cleaned[:-5]}"
    alternative = _clean(rest) if dash else ""
    if not cleaned:
        return (alternative or None), None
    return cleaned, (alternative or None)


def _clean(text: str) -> str:
    # Dotted acronyms keep their dots (``S.H.I.E.L.D.``, ``S.W.A.T.``); other dots separate.
    pieces = _ACRONYM.split(text)
    for i in range(0, len(pieces), 2):
        pieces[i] = _SEPARATORS.sub(" ", pieces[i])
    return "".join(pieces).strip(_EDGE_JUNK)


def _group(text: str, title_end: int, marker_end: int) -> str | None:
    """The scene group after the last dash, or in the last brackets, once a marker was seen."""
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
