"""classify: realistic release names and file lists get the right type and fields; is_banned
matches whole words through case, accents and punctuation, and ships no list of its own."""

from __future__ import annotations

import inspect
import re

import pytest
from anyascii import anyascii
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.bittorrented.naming.classify import Classification, ContentType, classify, is_banned
from keel.bittorrented.torrent.values import TorrentFile

MB = 1024 * 1024


def files(*entries: tuple[str, int]) -> tuple[TorrentFile, ...]:
    return tuple(
        TorrentFile(index=i, path=path, size=size) for i, (path, size) in enumerate(entries)
    )


ALBUM = files(*((f"{n:02d} - Track.flac", 30 * MB) for n in range(1, 10)), ("cover.jpg", MB))
MP3_ALBUM = files(("01 - Get Lucky.mp3", 9 * MB), ("02 - Lose Yourself.mp3", 8 * MB))
MOVIE = files(("Sintel.2010.mkv", 900 * MB), ("Sintel.2010.srt", 50_000), ("info.nfo", 900))
EPISODES = files(*((f"Show.S02E{n:02d}.mkv", 400 * MB) for n in range(1, 11)))
BOOKS = files(("Mistborn.epub", 2 * MB), ("Mistborn.mobi", 3 * MB), ("cover.jpg", 200_000))
SETUP = files(("setup.exe", 5 * MB), ("data-01.bin", 4000 * MB), ("readme.txt", 1000))
ISO = files(
    ("ubuntu-24.04.1-desktop-amd64.iso", 5800 * MB),
)
AUDIOBOOK = files(*((f"Chapter {n:02d}.mp3", 40 * MB) for n in range(1, 30)))

TV, MOV = ContentType.TV_SHOW, ContentType.MOVIE


@pytest.mark.parametrize(
    ("name", "torrent_files", "expected"),
    [
        (
            "The.Matrix.1999.1080p.BluRay.x264-SPARKS",
            (),
            Classification(MOV, "The Matrix", 1999, None, None, "1080p", "H.264", "SPARKS"),
        ),
        (
            "Dune.Part.Two.2024.2160p.WEB-DL.DDP5.1.Atmos.HDR.H.265-FLUX",
            files(("Dune.Part.Two.2024.2160p.WEB-DL.DDP5.1.Atmos.HDR.H.265-FLUX.mkv", 20_000 * MB)),
            Classification(MOV, "Dune", 2024, None, None, "2160p", "H.265", "FLUX"),
        ),
        (
            "Sintel.2010",
            MOVIE,
            Classification(MOV, "Sintel", 2010),
        ),
        (
            "Breaking.Bad.S01E02.720p.HDTV.x264-CTU",
            (),
            Classification(TV, "Breaking Bad", None, 1, 2, "720p", "H.264", "CTU"),
        ),
        (
            "The.Office.US.S05E14E15.1080p.WEB.h264-NOGRP",
            (),
            Classification(TV, "The Office", None, 5, 14, "1080p", "H.264", "NOGRP"),
        ),
        (
            "Game.of.Thrones.S03.COMPLETE.1080p.WEB-DL.DD5.1.H.264-NTb",
            (),
            Classification(TV, "Game of Thrones", None, 3, None, "1080p", "H.264", "NTb"),
        ),
        (
            "Stranger.Things.S04.2160p.NF.WEB-DL",
            EPISODES,
            Classification(TV, "Stranger Things", None, 4, None, "2160p"),
        ),
        (
            "Show.S01-S03.1080p",
            (),
            Classification(TV, "Show", None, 1, None, "1080p"),
        ),
        (
            "[SubsPlease] Jujutsu Kaisen - 24 (1080p) [ABCD1234].mkv",
            (),
            Classification(TV, "Jujutsu Kaisen", None, None, 24, "1080p", None, "SubsPlease"),
        ),
        (
            "The.Daily.Show.2024.03.14.1080p.WEB.h264-JEBAITED",
            (),
            Classification(TV, "The Daily Show", None, None, None, "1080p", "H.264", "JEBAITED"),
        ),
        (
            "Pink Floyd - The Dark Side of the Moon (1973) [FLAC]",
            ALBUM,
            Classification(ContentType.MUSIC, "Pink Floyd - The Dark Side of the Moon", 1973),
        ),
        (
            "Pink Floyd - The Dark Side of the Moon (1973) [FLAC]",
            (),
            Classification(ContentType.MUSIC, "Pink Floyd - The Dark Side of the Moon", 1973),
        ),
        (
            "Daft Punk - Random Access Memories (2013) MP3 320kbps",
            MP3_ALBUM,
            Classification(ContentType.MUSIC, "Daft Punk - Random Access Memories", 2013),
        ),
        (
            "Metallica - Discography",
            MP3_ALBUM,
            Classification(ContentType.MUSIC, "Metallica - Discography"),
        ),
        (
            "Stephen King - It (Audiobook) [MP3]",
            AUDIOBOOK,
            Classification(ContentType.AUDIOBOOK, "Stephen King - It"),
        ),
        (
            "Andy Weir - Project Hail Mary (Unabridged) M4B",
            (),
            Classification(ContentType.AUDIOBOOK, "Andy Weir - Project Hail Mary"),
        ),
        (
            "Brandon Sanderson - Mistborn Trilogy (EPUB)",
            BOOKS,
            Classification(ContentType.EBOOK, "Brandon Sanderson - Mistborn Trilogy"),
        ),
        (
            "Brandon Sanderson - Mistborn Trilogy (EPUB)",
            (),
            Classification(ContentType.EBOOK, "Brandon Sanderson - Mistborn Trilogy"),
        ),
        (
            "Batman #1 (2016) (Digital) (Zone-Empire).cbr",
            (),
            Classification(ContentType.COMIC, "Batman 1", 2016),
        ),
        (
            "ubuntu-24.04.1-desktop-amd64.iso",
            ISO,
            Classification(ContentType.SOFTWARE, "ubuntu"),
        ),
        (
            "Adobe Photoshop 2024 v25.0 x64 Multilingual",
            (),
            Classification(ContentType.SOFTWARE, "Adobe Photoshop", 2024),
        ),
        (
            "Cyberpunk.2077.v2.1-GOG",
            (),
            Classification(ContentType.GAME, "Cyberpunk"),
        ),
        (
            "Elden.Ring.v1.10-FitGirl.Repack",
            SETUP,
            Classification(ContentType.GAME, "Elden Ring"),
        ),
        (
            "Random holiday stuff",
            files(("notes.txt", 100), ("photo.jpg", 5 * MB)),
            Classification(ContentType.UNKNOWN, "Random holiday stuff"),
        ),
    ],
)
def test_classifies_realistic_releases(
    name: str, torrent_files: tuple[TorrentFile, ...], expected: Classification
) -> None:
    assert classify(name, torrent_files) == expected


def test_video_evidence_in_the_name_beats_keywords() -> None:
    comic_movie = classify("Comic.Book.Villains.2002.1080p.BluRay.x264")
    assert comic_movie.content_type is ContentType.MOVIE
    assert comic_movie.year == 2002


def test_files_outweigh_the_name_by_size() -> None:
    # A soundtrack named after its film is music when its bytes are audio.
    assert classify("Dune.2021.OST", ALBUM).content_type is ContentType.MUSIC
    # Extras in audio do not make a movie a music release.
    mixed = MOVIE + files(("commentary.mp3", 50 * MB))
    assert classify("Sintel.2010", mixed).content_type is ContentType.MOVIE


def test_adult_keywords_win_over_everything() -> None:
    result = classify("Some.Studio.XXX.1080p.WEB.x264", MOVIE)
    assert result.content_type is ContentType.XXX
    assert result.resolution == "1080p"


def test_a_source_only_video_comes_from_is_video_evidence() -> None:
    assert classify("Some Film (2021) [HDTV] [Grp]").content_type is MOV
    assert classify("Lion A Bevelsol (2024) [BluRay][DD5.1] [SENSI]").content_type is MOV
    # WEB alone tags music releases too, so it is no evidence.
    assert classify("Artist - Album (2019) [WEB FLAC]").content_type is ContentType.MUSIC


def test_the_music_scenes_naming_is_music() -> None:
    result = classify("Neostgro-Pelloan-Time-WEB-2019-DUNETH")
    assert (result.content_type, result.year) == (ContentType.MUSIC, 2019)
    assert classify("Artist-Album-(CAT001)-VINYL-1998-GRP").content_type is ContentType.MUSIC
    # Scene video is dotted, so the shape does not catch it.
    assert classify("Some.Show.S01E01.WEB-2019-GRP").content_type is TV


def test_a_version_number_is_software_when_nothing_else_speaks() -> None:
    assert classify("The.Quimalan.v21.3.29-ITHJORKA") == Classification(
        ContentType.SOFTWARE, "The Quimalan"
    )
    assert classify("Night Jorash Black 11.8.26").content_type is ContentType.SOFTWARE
    # Keywords speak first: a versioned GOG release is a game.
    assert classify("Cyberpunk.2077.v2.1-GOG").content_type is ContentType.GAME


def test_an_obfuscated_file_is_classified_by_its_folder() -> None:
    result = classify("Blue.Bloods.S08E09.1080p.HEVC.x265-MeGusta/afaae96ae7a140e0981ced2a79.mkv")
    assert result == Classification(TV, "Blue Bloods", None, 8, 9, "1080p", "H.265", "MeGusta")


def test_non_video_types_carry_no_video_fields() -> None:
    # A trailing word may read as a release group; outside video that field means nothing.
    result = classify("Brandon Sanderson - Mistborn Trilogy (EPUB)")
    assert result.release_group is None
    assert (result.season, result.episode, result.resolution, result.video_codec) == (None,) * 4


def test_content_type_values_are_bitmagnets() -> None:
    assert {t.value for t in ContentType} == {
        "movie",
        "tv_show",
        "music",
        "ebook",
        "comic",
        "audiobook",
        "game",
        "software",
        "xxx",
        "unknown",
    }


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=400), st.lists(st.text(max_size=30), max_size=3))
def test_any_text_is_classified_without_error(name: str, paths: list[str]) -> None:
    result = classify(name, files(*((path, 10) for path in paths)))
    assert result.content_type in ContentType


# is_banned: the keywords here are placeholders; the real list is configuration.

BANNED = ("forbiddenword", "two words", "xq")


@pytest.mark.parametrize(
    "name",
    [
        "Some.Forbiddenword.2024.1080p",
        "FORBIDDENWORD",
        "[forbiddenword] pack",
        "a_forbiddenword-b",
        "Fórbíddénwórd",  # accents are folded
        "ＦＯＲＢＩＤＤＥＮＷＯＲＤ",  # full-width letters fold too
        "TWO.WORDS.x264",
        "two - words",
        "X.Q.pack",  # letters spelled out one by one
        "x q",
    ],
)
def test_banned_keywords_match_as_whole_words(name: str) -> None:
    assert is_banned(name, BANNED)


@pytest.mark.parametrize(
    "name",
    ["forbiddenwords", "unforbiddenword", "twowords", "two.wordsmith", "xqz", "Ubuntu 24.04", ""],
)
def test_words_that_merely_contain_a_keyword_do_not_match(name: str) -> None:
    assert not is_banned(name, BANNED)


def test_no_default_list_and_empty_keywords_never_match() -> None:
    assert (
        inspect.signature(is_banned).parameters["banned_keywords"].default
        is inspect.Parameter.empty
    )
    assert not is_banned("anything at all", [])
    assert not is_banned("anything at all", ["", "  ", "..."])


@given(
    st.text(st.characters(max_codepoint=127), max_size=80),
    st.lists(st.text(max_size=12), max_size=5),
)
def test_is_banned_is_total_and_finds_a_word_taken_from_the_name(
    name: str, keywords: list[str]
) -> None:
    is_banned(name, keywords)
    words = "".join(c if c.isalnum() else " " for c in name).split()
    if words:
        assert is_banned(name, [*keywords, words[0]])


def _banned_by_substring(name: str, keywords: list[str]) -> bool:
    # The first implementation, kept as the reference: each keyword folded and searched for.
    def fold(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", anyascii(text).lower())

    words = fold(name)
    joined: list[str] = []
    for word in words:
        if len(word) == 1 and joined and joined[-1].startswith("\0"):
            joined[-1] += word
        else:
            joined.append(("\0" + word) if len(word) == 1 else word)
    letters = [w.lstrip("\0") for w in joined]
    forms = (f" {' '.join(words)} ", f" {' '.join(letters)} ")
    needles = (" ".join(fold(k)) for k in keywords)
    return any(n and f" {n} " in form for n in needles for form in forms)


PIECES = ["a", "b", "x", "q", "two", "words", "Ké", "y", ".", "-"]


@given(
    st.lists(st.sampled_from(PIECES), max_size=12),
    st.lists(st.lists(st.sampled_from(PIECES), max_size=4).map(" ".join), max_size=6),
)
def test_is_banned_matches_the_keyword_by_keyword_reference(
    pieces: list[str], keywords: list[str]
) -> None:
    name = " ".join(pieces)
    assert is_banned(name, keywords) == _banned_by_substring(name, keywords)
