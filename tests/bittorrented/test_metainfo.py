"""metainfo: real torrents made by libtorrent (v1, hybrid, v2-only) read as libtorrent reads
them, hand-built torrents for every refusal, and fuzzing that finds only MalformedTorrent."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.bittorrented.errors import InfoHashMismatch, MalformedTorrent, UnsupportedTorrent
from keel.bittorrented.torrent import bencode, metainfo
from keel.bittorrented.torrent.values import Metainfo, TorrentFile

PIECE = 16384
# Sizes chosen so a hybrid torrent needs a pad file after each of the first files.
CONTENT = {
    "a.txt": b"hello world " * 2750,
    "sub/b.bin": bytes(range(256)) * 273 + b"tail",
    "c": b"x\n",
    "ünïcode/ファイル.txt": b"12345",
}


def _make(root: Path, name: str, files: dict[str, bytes], flags: int, private: bool) -> bytes:
    top = root / name
    for relative, data in files.items():
        target = top / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    source = top if len(files) > 1 or "/" in next(iter(files)) else top / next(iter(files))
    creator = lt.create_torrent(lt.list_files(str(source)), PIECE, flags)
    creator.set_priv(private)
    lt.set_piece_hashes(creator, str(source.parent))
    return bytes(lt.bencode(creator.generate()))


@pytest.fixture(scope="module")
def torrents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("torrents")
    return {
        "v1": _make(root / "v1", "Some.Album", CONTENT, lt.create_torrent.v1_only, False),
        "hybrid": _make(root / "hy", "Some.Album", CONTENT, 0, True),
        "v2": _make(root / "v2", "Some.Album", CONTENT, lt.create_torrent.v2_only, False),
        "single_v1": _make(
            root / "s1", "single", {"movie.mkv": b"m" * 40000}, lt.create_torrent.v1_only, True
        ),
        "single_hybrid": _make(root / "s2", "single", {"movie.mkv": b"m" * 40000}, 0, False),
    }


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def _libtorrent_view(data: bytes) -> tuple[bytes, str, int, list[tuple[int, str, int]], bool]:
    """(v1 hash, name, real size, real files as (index, path, size), private) per libtorrent."""
    info = lt.torrent_info(data)
    layout = info.layout()
    real = [
        (i, layout.file_path(i), layout.file_size(i))
        for i in range(layout.num_files())
        if not layout.file_flags(i) & lt.file_storage.flag_pad_file
    ]
    size = sum(file_size for _, _, file_size in real)
    return info.info_hashes().v1.to_bytes(), info.name(), size, real, info.priv()


@pytest.mark.parametrize("kind", ["v1", "hybrid"])
def test_multi_file_torrent_reads_as_libtorrent_reads_it(
    torrents: dict[str, bytes], kind: str
) -> None:
    parsed = metainfo.parse_torrent(torrents[kind])
    v1_hash, name, size, real, private = _libtorrent_view(torrents[kind])

    assert parsed.info_hash == v1_hash
    assert parsed.name == name == "Some.Album"
    assert parsed.size == size == sum(len(data) for data in CONTENT.values())
    assert parsed.private is private is (kind == "hybrid")
    assert parsed.files_count == len(real) == len(CONTENT)
    assert [(f.index, f"{name}/{f.path}", f.size) for f in parsed.files] == real
    assert {f.path for f in parsed.files} == set(CONTENT)


def test_hybrid_torrent_has_pad_files_that_are_skipped(torrents: dict[str, bytes]) -> None:
    layout = lt.torrent_info(torrents["hybrid"]).layout()
    assert layout.num_files() > len(CONTENT)  # libtorrent did insert pad files
    parsed = metainfo.parse_torrent(torrents["hybrid"])
    assert not any(f.path.startswith(".pad") for f in parsed.files)
    # Indexes stay libtorrent's, so they skip over the pad files' positions.
    assert [f.index for f in parsed.files] != list(range(len(parsed.files)))


@pytest.mark.parametrize("kind", ["single_v1", "single_hybrid"])
def test_single_file_torrent_lists_its_one_file_under_its_name(
    torrents: dict[str, bytes], kind: str
) -> None:
    parsed = metainfo.parse_torrent(torrents[kind])
    v1_hash, name, size, _, private = _libtorrent_view(torrents[kind])
    assert parsed == Metainfo(
        info_hash=v1_hash,
        name="movie.mkv",
        size=40000,
        files=(TorrentFile(index=0, path="movie.mkv", size=40000),),
        files_count=1,
        private=private,
    )
    assert (name, size) == ("movie.mkv", 40000)


def test_v2_only_torrent_is_refused_as_unsupported(torrents: dict[str, bytes]) -> None:
    with pytest.raises(UnsupportedTorrent) as caught:
        metainfo.parse_torrent(torrents["v2"])
    assert caught.value.code == "unsupported_torrent"
    assert isinstance(caught.value, MalformedTorrent)


def test_file_list_is_capped_but_counted(torrents: dict[str, bytes]) -> None:
    parsed = metainfo.parse_torrent(torrents["hybrid"], max_files=2)
    full = metainfo.parse_torrent(torrents["hybrid"])
    assert parsed.files == full.files[:2]
    assert parsed.files_count == len(CONTENT)
    assert parsed.files_over_cap
    assert parsed.size == full.size
    assert metainfo.parse_torrent(torrents["v1"], max_files=0).files == ()
    with pytest.raises(ValueError, match="max_files"):
        metainfo.parse_torrent(torrents["v1"], max_files=-1)


@pytest.mark.parametrize("kind", ["v1", "hybrid", "single_hybrid"])
def test_info_dict_from_peers_is_verified_against_the_v1_hash(
    torrents: dict[str, bytes], kind: str
) -> None:
    info = lt.torrent_info(torrents[kind])
    raw = bytes(info.info_section())
    v1_hash = info.info_hashes().v1.to_bytes()
    parsed = metainfo.metainfo_from_info_dict(raw, expected_info_hash=v1_hash)
    assert parsed == metainfo.parse_torrent(torrents[kind])


def test_hybrid_info_dict_fetched_by_its_truncated_v2_hash_is_keyed_by_v1(
    torrents: dict[str, bytes],
) -> None:
    info = lt.torrent_info(torrents["hybrid"])
    raw = bytes(info.info_section())
    truncated_v2 = hashlib.sha256(raw).digest()[:20]
    assert info.info_hashes().get_best().to_bytes() == truncated_v2
    parsed = metainfo.metainfo_from_info_dict(raw, expected_info_hash=truncated_v2)
    assert parsed.info_hash == info.info_hashes().v1.to_bytes()


def test_info_dict_with_another_hash_is_refused(torrents: dict[str, bytes]) -> None:
    raw = bytes(lt.torrent_info(torrents["v1"]).info_section())
    with pytest.raises(InfoHashMismatch) as caught:
        metainfo.metainfo_from_info_dict(raw, expected_info_hash=b"\x01" * 20)
    assert caught.value.code == "info_hash_mismatch"
    assert "0101010101" in caught.value.detail


def test_v2_only_info_dict_is_refused_even_with_its_right_hash(
    torrents: dict[str, bytes],
) -> None:
    raw = bytes(lt.torrent_info(torrents["v2"]).info_section())
    with pytest.raises(UnsupportedTorrent):
        metainfo.metainfo_from_info_dict(raw, expected_info_hash=hashlib.sha256(raw).digest()[:20])


def test_info_dict_that_is_not_a_dictionary_is_refused() -> None:
    raw = b"li1ee"
    sha1 = _sha1(raw)
    with pytest.raises(MalformedTorrent, match="not a dictionary"):
        metainfo.metainfo_from_info_dict(raw, expected_info_hash=sha1)


# Hand-built torrents: one valid base, then one defect at a time.


def _info(files: list[dict[bytes, Any]] | None = None, **fields: Any) -> dict[bytes, Any]:
    """A valid multi-file info dict with a piece list that fits ``files``."""
    files = files if files is not None else [{b"length": 10, b"path": [b"a.txt"]}]
    info: dict[bytes, Any] = {b"name": b"pack", b"piece length": PIECE, b"files": files}
    info.update({key.replace("_", " ").encode(): value for key, value in fields.items()})
    lengths = [f.get(b"length") for f in info.get(b"files", []) if isinstance(f, dict)]
    total = sum(length for length in lengths if isinstance(length, int))
    if b"pieces" not in info and total < 2**40:
        info[b"pieces"] = b"\x00" * 20 * -(-total // PIECE)
    return {key: value for key, value in info.items() if value is not None}


def _torrent(info: dict[bytes, Any]) -> bytes:
    return bencode.encode({b"announce": b"udp://tracker.example:80", b"info": info})


def test_hand_built_torrent_matches_libtorrent() -> None:
    files = [
        {b"length": 5, b"path": [b"dir", b"one.txt"]},
        {b"length": 7, b"path": [b"two.txt"]},
    ]
    data = _torrent(_info(files))
    parsed = metainfo.parse_torrent(data)
    v1_hash, name, size, real, _ = _libtorrent_view(data)
    assert parsed.info_hash == v1_hash == _sha1(bencode.encode(_info(files)))
    assert (parsed.name, parsed.size) == (name, size) == ("pack", 12)
    assert [(f.index, f"pack/{f.path}", f.size) for f in parsed.files] == real


def test_info_hash_is_over_the_raw_bytes_when_keys_are_unsorted() -> None:
    raw_info = b"d4:name4:pack6:lengthi10e12:piece lengthi16384e6:pieces20:" + b"\x00" * 20 + b"e"
    data = b"d4:info" + raw_info + b"8:announce3:urle"
    parsed = metainfo.parse_torrent(data)
    assert parsed.info_hash == _sha1(raw_info)
    assert parsed.info_hash != _sha1(bencode.encode(bencode.decode(raw_info, strict=False)))
    assert parsed.info_hash == lt.torrent_info(data).info_hashes().v1.to_bytes()


def test_utf8_name_and_path_fields_win() -> None:
    files = [{b"length": 10, b"path": [b"caf\xe9.txt"], b"path.utf-8": ["café.txt".encode()]}]
    parsed = metainfo.parse_torrent(
        _torrent(_info(files, name=b"Am\xe9lie", **{"name.utf-8": "Amélie".encode()}))
    )
    assert parsed.name == "Amélie"
    assert parsed.files[0].path == "café.txt"


def test_malformed_utf8_fields_fall_back_to_the_plain_ones() -> None:
    files = [{b"length": 10, b"path": [b"plain.txt"], b"path.utf-8": b"not a list"}]
    parsed = metainfo.parse_torrent(_torrent(_info(files, **{"name.utf-8": 7})))
    assert (parsed.name, parsed.files[0].path) == ("pack", "plain.txt")


def test_undecodable_utf8_is_replaced_not_fatal() -> None:
    files = [{b"length": 10, b"path": [b"\xff\xfe.txt"]}]
    parsed = metainfo.parse_torrent(_torrent(_info(files, name=b"bad\xc3(")))
    assert parsed.name == "bad\ufffd("
    assert parsed.files[0].path == "\ufffd\ufffd.txt"


def test_pad_files_by_attr_or_by_path_are_skipped_but_keep_their_index() -> None:
    files = [
        {b"length": 100, b"path": [b"a"]},
        {b"length": PIECE - 100, b"path": [b"padding"], b"attr": b"p"},
        {b"length": 50, b"path": [b"b"], b"attr": b"x"},
        {b"length": PIECE - 50, b"path": [b".pad", b"16334"]},
        {b"length": 9, b"path": [b"c"]},
    ]
    parsed = metainfo.parse_torrent(_torrent(_info(files)))
    assert [(f.index, f.path, f.size) for f in parsed.files] == [
        (0, "a", 100),
        (2, "b", 50),
        (4, "c", 9),
    ]
    assert (parsed.size, parsed.files_count) == (159, 3)


def test_private_flag_is_only_the_integer_one() -> None:
    assert metainfo.parse_torrent(_torrent(_info(private=1))).private
    assert not metainfo.parse_torrent(_torrent(_info(private=0))).private
    assert not metainfo.parse_torrent(_torrent(_info(private=b"1"))).private
    assert not metainfo.parse_torrent(_torrent(_info())).private


def test_zero_byte_files_make_a_torrent_with_no_pieces() -> None:
    parsed = metainfo.parse_torrent(_torrent(_info([{b"length": 0, b"path": [b"empty"]}])))
    assert (parsed.size, parsed.files_count) == (0, 1)


HUGE = 2**62


@pytest.mark.parametrize(
    ("info", "fragment"),
    [
        (_info(name=None), "no name"),
        (_info(name=5), "no name"),
        (_info(name=b""), "blank"),
        (_info(name=b"   "), "blank"),
        (_info(name=b".."), "invalid component"),
        (_info(name=b"a/b"), "invalid component"),
        (_info(name=b"a\x00b"), "invalid component"),
        (_info([{b"length": -1, b"path": [b"a"]}]), "outside 0..2**63-1"),
        (_info([{b"length": 2**63, b"path": [b"a"]}], pieces=b""), "outside 0..2**63-1"),
        (_info([{b"length": b"10", b"path": [b"a"]}]), "not an integer"),
        (_info([{b"path": [b"a"]}]), "not an integer"),
        (_info([{b"length": 1, b"path": [b"..", b"etc"]}]), "invalid component"),
        (_info([{b"length": 1, b"path": [b"ok", b""]}]), "invalid component"),
        (_info([{b"length": 1, b"path": [b"."]}]), "invalid component"),
        (_info([{b"length": 1, b"path": [b"a/../../b"]}]), "invalid component"),
        (_info([{b"length": 1, b"path": []}]), "non-empty list"),
        (_info([{b"length": 1, b"path": b"a"}]), "non-empty list"),
        (_info([{b"length": 1, b"path": [b"a", 1]}]), "non-empty list"),
        (_info([{b"length": 1, b"path.utf-8": [b".."], b"path": [b"a"]}]), "invalid component"),
        (_info([b"not a dict"]), "not a dictionary"),  # type: ignore[list-item]
        (_info([]), "non-empty list"),
        ({k: v for k, v in _info().items() if k != b"files"}, "neither 'length' nor 'files'"),
        (_info([{b"length": 1, b"path": [b".pad", b"1"]}]), "only pad files"),
        (_info(length=10), "both"),
        (_info(piece_length=0), "piece length"),
        (_info(piece_length=None), "piece length"),
        (_info(pieces=b"\x00" * 19), "20-byte hashes"),
        (_info(pieces=b"\x00" * 40), "holds 2 hashes; the files need 1"),
        (_info(pieces=b""), "holds 0 hashes; the files need 1"),
        (
            _info(
                [{b"length": HUGE, b"path": [b"a"]}, {b"length": HUGE, b"path": [b"b"]}] * 2,
                piece_length=2**40,
                pieces=b"",
            ),
            "over 2**63-1",
        ),
    ],
)
def test_invalid_info_dicts_are_refused(info: dict[bytes, Any], fragment: str) -> None:
    with pytest.raises(MalformedTorrent) as caught:
        metainfo.parse_torrent(_torrent(info))
    assert type(caught.value) is MalformedTorrent
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"le",
        b"de",
        b"d4:infoi1ee",
        b"d4:info0:e",
        bencode.encode({b"info": {}}),
    ],
)
def test_documents_without_a_usable_info_dict_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedTorrent):
        metainfo.parse_torrent(data)


def test_trailing_garbage_after_a_torrent_is_refused(torrents: dict[str, bytes]) -> None:
    with pytest.raises(MalformedTorrent, match="trailing data") as caught:
        metainfo.parse_torrent(torrents["v1"] + b"\n")
    assert caught.value.offset == len(torrents["v1"])


def test_v2_only_hand_built_info_dict_is_unsupported() -> None:
    info = {b"name": b"x", b"meta version": 2, b"file tree": {}, b"piece length": PIECE}
    with pytest.raises(UnsupportedTorrent):
        metainfo.parse_torrent(_torrent(info))


# Fuzzing: random bytes, damaged real torrents, and structurally random info dicts.


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(out) - 1))
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "digit")))
        if op == "flip":
            out[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del out[at]
        elif op == "truncate":
            del out[max(at, 1) :]
        else:  # a digit is most likely to keep the bencode valid and the torrent wrong
            out[at] = draw(st.sampled_from(b"0123456789"))
        if not out:
            out = bytearray(b"d")
    return bytes(out)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_malformed_torrent(data: bytes) -> None:
    with contextlib.suppress(MalformedTorrent):
        metainfo.parse_torrent(data)
    with contextlib.suppress(MalformedTorrent):
        metainfo.metainfo_from_info_dict(data, expected_info_hash=_sha1(data))


@settings(max_examples=300)
@given(st.data(), st.sampled_from(["v1", "hybrid", "v2", "single_v1", "single_hybrid"]))
def test_damaged_real_torrents_raise_only_malformed_torrent(
    torrents: dict[str, bytes], data: st.DataObject, kind: str
) -> None:
    broken = data.draw(damaged(torrents[kind]))
    with contextlib.suppress(MalformedTorrent):
        parsed = metainfo.parse_torrent(broken)
        assert parsed.files_count >= len(parsed.files)


leaves = (
    st.integers(min_value=-3, max_value=2**64)
    | st.binary(max_size=8)
    | st.sampled_from([b"..", b".pad", b"p", b"", b"\xff"])
)
nested = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([b"length", b"path", b"path.utf-8", b"attr", b"x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
info_dicts = st.dictionaries(
    st.sampled_from(
        [
            *(b"name", b"name.utf-8", b"length", b"files", b"piece length", b"pieces"),
            *(b"private", b"meta version", b"file tree"),
        ]
    ),
    nested,
    max_size=8,
)


@given(info_dicts)
def test_structurally_random_info_dicts_raise_only_malformed_torrent(
    info: dict[bytes, bencode.Value],
) -> None:
    with contextlib.suppress(MalformedTorrent):
        metainfo.parse_torrent(_torrent(info))


def test_announce_urls_lists_tiers_then_announce_once_each() -> None:
    data = bencode.encode(
        {
            b"announce": b"udp://a.example:1/announce",
            b"announce-list": [
                [b"udp://a.example:1/announce", b"http://b.example/announce"],
                [b"\xff\xfe"],
                b"not-a-tier",
            ],
            b"info": {b"name": b"x", b"length": 1, b"piece length": 16384, b"pieces": b"0" * 20},
        }
    )
    assert metainfo.announce_urls(data) == [
        "udp://a.example:1/announce",
        "http://b.example/announce",
    ]
