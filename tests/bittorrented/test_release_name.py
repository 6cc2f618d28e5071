"""release_name: a name built from known parts reads back as those parts; the traps guessit's
test corpus taught us read right; any text at all is read without error."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from keel.bittorrented.naming import release_name
from keel.bittorrented.naming.release_name import ReleaseName, parse

CODECS = {"x264": "H.264", "H.264": "H.264", "x265": "H.265", "HEVC": "H.265", "XviD": "Xvid"}


def _plain(word: str) -> bool:
    # A title word the parser cannot take for a marker (``Web``, ``Proper``, ``Dual``...).
    return release_name._MARKERS.fullmatch(word) is None


title_words = st.lists(
    st.from_regex(r"[A-Z][a-z]{2,9}", fullmatch=True).filter(_plain), min_size=1, max_size=5
)
groups = st.from_regex(r"[A-Z][A-Za-z0-9]{2,8}", fullmatch=True).filter(_plain)


@given(
    words=title_words,
    year=st.none() | st.integers(1930, 2025),
    season_episode=st.none() | st.tuples(st.integers(1, 40), st.integers(1, 99)),
    resolution=st.none() | st.sampled_from(["480p", "720p", "1080p", "2160p"]),
    codec=st.none() | st.sampled_from(sorted(CODECS)),
    group=groups,
    separator=st.sampled_from([".", " "]),
)
def test_a_name_built_from_parts_reads_back_as_those_parts(
    words: list[str],
    year: int | None,
    season_episode: tuple[int, int] | None,
    resolution: str | None,
    codec: str | None,
    group: str,
    separator: str,
) -> None:
    assume(any(part is not None for part in (year, season_episode, resolution, codec)))
    tag = f"S{season_episode[0]:02d}E{season_episode[1]:02d}" if season_episode else None
    parts = [*words, str(year) if year else None, tag, resolution, codec]
    name = separator.join(p for p in parts if p) + f"-{group}"

    read = parse(name)

    assert read.title == " ".join(words)
    assert read.year == year
    assert (read.season, read.episode) == (season_episode or (None, None))
    assert read.resolution == resolution
    assert read.video_codec == (CODECS[codec] if codec else None)
    assert read.release_group == group


@given(words=title_words)
def test_a_title_read_from_a_name_reads_as_itself(words: list[str]) -> None:
    title = parse(".".join([*words, "2010", "1080p", "x264"]) + "-GRP").title
    assert title is not None
    assert parse(title).title == title


@given(st.text(max_size=600))
def test_any_text_is_read_without_error_and_the_same_way_twice(name: str) -> None:
    first = parse(name)
    assert first == parse(name[:] + "")
    assert isinstance(first, ReleaseName)
    if first.title is not None:
        assert first.title == first.title.strip()
        assert first.title


@given(st.lists(st.sampled_from(["/", "\\", ".", "-", " ", "[", "]", "(", ")", "S01", "E02",
                                  "1080p", "2019", "x264", "Web", "12", "v2.1", "#"]),
                max_size=30))  # fmt: skip
def test_marker_soup_is_read_without_error(pieces: list[str]) -> None:
    parse("".join(pieces))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # A number that is no year ends the title as guessit's "episode".
        ("Cyberpunk.2077.v2.1-GOG", {"title": "Cyberpunk", "year": None, "episode": 2077}),
        # A year opening the name is the title.
        ("1917.2019.1080p.BluRay.x264-GRP", {"title": "1917", "year": 2019}),
        ("2012.2009.720p.BluRay.x264.DTS-WiKi", {"title": "2012", "year": 2009}),
        # One digit after the title is a sequel, not an episode.
        ("Bad Santa 2 2016 BDRip XviD-EXTREME", {"title": "Bad Santa 2", "episode": None}),
        # A country before SxxEyy is dropped; a last word that looks like one otherwise is not.
        ("The.Office.US.S05E14.1080p.WEB.h264-NOGRP", {"title": "The Office", "season": 5}),
        ("It.Ends.With.Us.2024.1080p.mkv", {"title": "It Ends With Us", "year": 2024}),
        # Marker words inside a title, before its year.
        ("The.Girl.in.the.Spiders.Web.2019.1080p.WEB-DL.x264-EVO", {"title": "The Girl in the Spiders Web"}),  # noqa: E501
        ("Something.Opus.2025.1080p.WEB-DL.DDP5.1-AOC.mkv", {"title": "Something Opus"}),
        ("The_Italian_Job.mkv", {"title": "The Italian Job"}),
        ("Die.Schluempfe.2.German.DL.1080p.BluRay.x264-EXQ", {"title": "Die Schluempfe 2"}),
        # Fansub shapes: group first, episode after a dash or before the title, CRC last.
        ("[SubsPlease] Jujutsu Kaisen - 24 (1080p) [ABCD1234].mkv",
         {"title": "Jujutsu Kaisen", "episode": 24, "release_group": "SubsPlease"}),
        ("[DeadFish] 12 - Tari Tari [BD][720p][AAC].mp4", {"title": "Tari Tari", "episode": 12}),
        ("Naruto Shippuden Episode 366v2 VOSTFR.avi", {"title": "Naruto Shippuden", "episode": 366}),  # noqa: E501
        # Seasons and episodes spelled other ways.
        ("Show.S01-S03.1080p", {"season": 1, "episode": None}),
        ("Californication.2x05.Vaginatown.HDTV.XviD-0TV.avi", {"season": 2, "episode": 5}),
        ("Pawn.Stars.S2014E18.720p.HDTV.x264-KILLERS", {"season": 2014, "episode": 18}),
        ("Stranger Things Season 4 Complete 1080p WEB", {"title": "Stranger Things", "season": 4}),
        ("Die.Simpsons.Staffel.2.Folge.5.German.1080p", {"season": 2, "episode": 5}),
        ("Show Name - Temporada 4 [HDTV][Cap.408][Castellano]", {"season": 4, "episode": 8}),
        ("The.Daily.Show.2024.03.14.1080p.WEB.h264-JEBAITED", {"dated": True, "year": None}),
        ("Kaamelott Saison 2 Épisode 5 FRENCH 1080p", {"season": 2, "episode": 5}),
        ("The.White.Lotus.2.Sezon.7.Bolum.2021.1080p.WEB-DL",
         {"season": 2, "episode": 7, "year": 2021}),
        # A packed number holds a season, except a fansub's; a codec is no episode.
        ("Show.Name.102.HDTV.XViD.Etc-Group", {"title": "Show Name", "season": 1, "episode": 2}),
        ("[Group] Show - 102 [720p].mkv", {"season": None, "episode": 102}),
        ("Anime - 03 x264 GRP.mkv", {"season": None, "episode": 3, "video_codec": "H.264"}),
        ("Friends S03/Friends - 07 - The One.mkv", {"title": "Friends", "season": 3, "episode": 7}),
        # Other shapes of title.
        ("Series/Simpsons/Simpsons,.The.12x08.A.Bas.Le.Sergent.Skinner.FR.avi",
         {"title": "The Simpsons"}),
        ("Batman #1 (2016) (Digital) (Zone-Empire).cbr", {"title": "Batman 1", "year": 2016}),
        ("Dune.Part.Two.2024.2160p.WEB-DL.DDP5.1.Atmos.HDR.H.265-FLUX",
         {"title": "Dune", "resolution": "2160p", "video_codec": "H.265", "release_group": "FLUX"}),
        ("Pink Floyd - The Dark Side of the Moon (1973) [FLAC]",
         {"title": "Pink Floyd", "alternative_title": "The Dark Side of the Moon", "year": 1973}),
        # An obfuscated file name is read from its folder.
        ("Blue.Bloods.S08E09.1080p.HEVC.x265-MeGusta/afaae96ae7a140e0981ced2a79221751.mkv",
         {"title": "Blue Bloods", "season": 8, "episode": 9, "resolution": "1080p"}),
        ("movies/Charlie.And.Boots.DVDRip.XviD-TheWretched/wthd-cab.avi",
         {"title": "Charlie And Boots"}),
        # A source only video comes from, a bare resolution after a marker, a version.
        ("Movie Name 2013 1080 x265 Ox.mkv", {"resolution": "1080p", "year": 2013}),
        ("Some Film (2021) [HDTV] [Grp]", {"video_source": "HDTV", "release_group": "Grp"}),
        ("ubuntu-24.04.1-desktop-amd64.iso", {"title": "ubuntu", "version": "24.04.1"}),
        # A dash inside a marker is no group.
        ("Stranger.Things.S04.2160p.NF.WEB-DL", {"release_group": None}),
    ],
)  # fmt: skip
def test_tricky_shapes(name: str, expected: dict[str, object]) -> None:
    read = parse(name)
    assert {field: getattr(read, field) for field in expected} == expected


def test_empty_and_separator_only_names_say_nothing() -> None:
    assert parse("") == ReleaseName()
    assert parse("///") == ReleaseName()
    assert parse(" . - ").title is None
