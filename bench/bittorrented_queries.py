"""The benchmark's query set, drawn from a generated corpus (``bittorrented_names``).

Queries come from names that are really in the corpus (its first rows, which every size
holds), so most of them have hits, in the proportions of a search box's traffic:

    rare       one tail word of a title                    ellofen
    common     one very common token                       the, 2024, 1080p, x264
    multi      two or three tokens of one name, shuffled   lake 2019 1080p
    phrase     consecutive tokens, quoted                  "the dark lake"
    exclusion  a word and a common token excluded          lake -x264
    or         a word and an either-or                     lake x264 | x265
    prefix     the start of a title word, or of a tag       ello*, s01e0*, "the da"*
    disjoint   common tokens that never meet in one name   flac 1080p (zero hits)
    title      title words with the year and resolution    dark lake 2019 1080p

``disjoint`` is the planner's trap: each word alone is in millions of names, so walking the
sort index looks cheap, yet no name has both.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import bittorrented_names as names
from keel.bittorrented.search.query import parse
from keel.bittorrented.search.tokens import tokenize

CLASSES: tuple[tuple[str, float], ...] = (
    ("rare", 0.14),
    ("common", 0.08),
    ("multi", 0.15),
    ("phrase", 0.14),
    ("exclusion", 0.12),
    ("or", 0.10),
    ("prefix", 0.10),
    ("disjoint", 0.07),
    ("title", 0.10),
)
COMMON = (
    "the", "2024", "1080p", "x264", "720p", "web", "of", "and", "bluray", "flac", "s01e01",
    "hevc", "2160p", "dl", "a", "love", "h264", "x265", "webrip", "2019", "mp3", "x64",
    "dark", "man", "complete", "season", "hdtv", "2023", "aac", "dts", "480p", "episode",
    "the 1080p", "2024 1080p", "web dl", "the of", "x264 720p", "s01", "pro", "discography",
)  # fmt: skip
EXCLUDED = ("x264", "720p", "1080p", "web", "hevc", "x265", "the", "flac", "2024", "bluray")
EITHER = ("x264 | x265", "720p | 1080p", "flac | mp3", "web | webrip", "hevc | x265", "2023 | 2024")
# Tags the generator never puts in one name: music and software against video.
AUDIO_OR_SOFTWARE = ("flac", "mp3", "discography", "kbps", "x64", "x86", "keygen", "portable")
VIDEO = ("1080p", "720p", "2160p", "x264", "x265", "hevc", "bluray", "webrip", "hdtv", "s01e01")
SAMPLE_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class BenchQuery:
    kind: str
    text: str


def build(corpus: names.Corpus, count: int, *, seed: int = 7) -> list[BenchQuery]:
    """``count`` distinct queries (every class at least once when ``count`` allows)."""
    rng = random.Random(f"{corpus.seed}:queries:{seed}")
    sample = [r.name for r in names.releases(corpus, min(corpus.rows, SAMPLE_ROWS))]
    rank = {w: i for i, w in enumerate(corpus.vocabulary)}
    tail = len(corpus.vocabulary) // 8
    makers = {
        "rare": lambda: _rare(rng, sample, rank, tail),
        "common": lambda: rng.choice(COMMON),
        "multi": lambda: _multi(rng, sample),
        "phrase": lambda: _phrase(rng, sample),
        "exclusion": lambda: _exclusion(rng, sample, rank),
        "or": lambda: _either(rng, sample, rank, tail),
        "prefix": lambda: _prefix(rng, sample, rank),
        "disjoint": lambda: _disjoint(rng),
        "title": lambda: _title(rng, sample, rank),
    }
    quotas = {kind: max(1, round(share * count)) for kind, share in CLASSES}
    while sum(quotas.values()) > count and quotas["multi"] > 1:
        quotas["multi"] -= 1
    while sum(quotas.values()) < count:
        quotas["multi"] += 1
    out: list[BenchQuery] = []
    seen: set[str] = set()

    def fill(kind: str, quota: int) -> None:
        made = attempts = 0
        while made < quota and attempts < quota * 50:
            attempts += 1
            query = makers[kind]()
            if query and query not in seen and parse(query).clauses:
                seen.add(query)
                out.append(BenchQuery(kind, query))
                made += 1

    for kind, quota in quotas.items():
        fill(kind, quota)
    fill("multi", count - len(out))  # a class that ran out of distinct queries
    return out


def _disjoint(rng: random.Random) -> str:
    words = [rng.choice(AUDIO_OR_SOFTWARE), rng.choice(VIDEO)]
    if rng.random() < 0.2:
        words.insert(0, "the")
    rng.shuffle(words)
    return " ".join(words)


def _title_words(name: str, rank: dict[str, int]) -> list[str]:
    return [t for t in dict.fromkeys(tokenize(name)) if t in rank]


def _rare(rng: random.Random, sample: list[str], rank: dict[str, int], tail: int) -> str:
    words = [w for w in _title_words(rng.choice(sample), rank) if rank[w] >= tail]
    return rng.choice(words) if words else ""


def _multi(rng: random.Random, sample: list[str]) -> str:
    tokens = list(dict.fromkeys(tokenize(rng.choice(sample))))
    if len(tokens) < 2:
        return ""
    picked = rng.sample(tokens, min(len(tokens), rng.choice((2, 2, 3))))
    return " ".join(picked)


def _phrase(rng: random.Random, sample: list[str]) -> str:
    tokens = tokenize(rng.choice(sample))
    length = rng.choice((2, 2, 3))
    if len(tokens) < length:
        return ""
    start = rng.randrange(len(tokens) - length + 1)
    return '"' + " ".join(tokens[start : start + length]) + '"'


def _exclusion(rng: random.Random, sample: list[str], rank: dict[str, int]) -> str:
    words = _title_words(rng.choice(sample), rank)
    if not words:
        return ""
    excluded = rng.sample(EXCLUDED, rng.choice((1, 1, 2)))
    return " ".join([rng.choice(words), *(f"-{x}" for x in excluded)])


def _either(rng: random.Random, sample: list[str], rank: dict[str, int], tail: int) -> str:
    words = _title_words(rng.choice(sample), rank)
    if not words:
        return ""
    if rng.random() < 0.3:
        other = [w for w in _title_words(rng.choice(sample), rank) if rank[w] >= tail]
        return f"{rng.choice(words)} | {other[0]}" if other else ""
    return f"{rng.choice(words)} {rng.choice(EITHER)}"


def _prefix(rng: random.Random, sample: list[str], rank: dict[str, int]) -> str:
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(("s01e0*", "s02*", "x26*", "1080*", "web*", "20*", "blu*", "dd5*"))
    tokens = tokenize(rng.choice(sample))
    if roll < 0.35 and len(tokens) >= 2:
        start = rng.randrange(len(tokens) - 1)
        first, second = tokens[start], tokens[start + 1]
        return f'"{first} {second[: max(1, len(second) // 2)]}"*'
    words = [w for w in _title_words(" ".join(tokens), rank) if len(w) >= 5]
    if not words:
        return ""
    word = rng.choice(words)
    return word[: rng.randint(3, min(6, len(word) - 1))] + "*"


def _title(rng: random.Random, sample: list[str], rank: dict[str, int]) -> str:
    tokens = tokenize(rng.choice(sample))
    years = [t for t in tokens if len(t) == 4 and t.isdigit() and t.startswith(("19", "20"))]
    resolutions = [t for t in tokens if t.endswith("p") and t[:-1].isdigit()]
    words = [t for t in tokens if t in rank][:3]
    if not words or not years:
        return ""
    return " ".join([*words, years[0], *resolutions[:1]])
