"""Classification at ingest: guessit's reading (the classifier before ADR 0010) against ours.

Both run in this process: the classifier as it was (kept here verbatim: guessit's reading, then
that day's rules) and ``classify.classify`` as it is. Two corpora:

* generated: the first N names of ``bittorrented_names.py`` with their TRUE classification;
* real: guessit's own test corpus of release names (``guessit/test/movies.yml`` and
  ``episodes.yml``, read from the installed package, never copied; skipped when absent). It is
  guessit's test suite, so guessit is expected to score near 100% on it.

Prints names/s for each reader (the two take turns on slices of 200 names, so the shared
machine's load falls on both alike), the ratio, and per-field accuracy (content type, title,
year, season and episode together, resolution) as Markdown; titles compare case- and
space-folded. Then the new classifier alone over ``--solo`` generated names (best of three
passes), the figure that says whether ingest can afford it, and the banned-name screen (also
run on every ingested row) before and after, with 300 keywords.

    PYTHONPATH=src .venv/bin/python bench/bittorrented_classify.py --names 10000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bittorrented_names import Corpus, releases
from keel.bittorrented.naming import classify, release_name
from keel.bittorrented.naming.classify import Classification, ContentType
from keel.bittorrented.torrent.values import TorrentFile

Classifier = Callable[[str], Classification]
FIELDS = ("content type", "title", "year", "season/episode", "resolution")


@dataclass(frozen=True, slots=True)
class Truth:
    """What a corpus says about a name; a field is ``...`` where the corpus does not say."""

    content_type: ContentType
    title: object = ...
    year: object = ...
    season_episode: object = ...
    resolution: object = ...


def guess(name: str) -> dict[str, Any]:
    """guessit's reading of ``name``, as the classifier before ADR 0010 made it."""
    from guessit import guessit
    from guessit.api import GuessitException

    try:
        return dict(guessit(name[:256], {"no_user_config": True}))
    except GuessitException:
        return {}


def classify_before(name: str, files: Sequence[TorrentFile] = ()) -> Classification:
    """The classifier before ADR 0010, kept verbatim as the baseline (its helpers are
    unchanged in ``classify``): guessit's reading, then the rules of that day."""
    words = frozenset(classify._words(name))
    guessed = guess(name)
    dominant = (
        classify._dominant(files) if files else classify._EXTENSIONS.get(classify._extension(name))
    )
    video_in_name = any(
        guessed.get(key) is not None for key in ("season", "screen_size", "video_codec")
    )
    if words & classify._XXX:
        content_type = ContentType.XXX
    elif dominant is classify._VIDEO or (dominant is None and video_in_name):
        content_type = ContentType.TV_SHOW if _is_episode(guessed) else ContentType.MOVIE
    elif dominant is not None:
        content_type = classify._refine(dominant, words)
    else:
        content_type = next((kind for kind, keys in classify._KEYWORDS if words & keys), None) or (
            ContentType.MUSIC if guessed.get("audio_codec") else ContentType.UNKNOWN
        )

    if content_type not in classify._VIDEO_TYPES:
        title, alternative = _str(guessed.get("title")), _str(guessed.get("alternative_title"))
        full = f"{title} - {alternative}" if title and alternative else title
        return Classification(content_type, title=full, year=_int(guessed.get("year")))
    return Classification(
        content_type,
        title=_str(guessed.get("title")),
        year=_int(guessed.get("year")),
        season=_int(guessed.get("season")),
        episode=_int(guessed.get("episode")),
        resolution=_str(guessed.get("screen_size")),
        video_codec=_str(guessed.get("video_codec")),
        release_group=_str(guessed.get("release_group")),
    )


def _is_episode(guessed: dict[str, Any]) -> bool:
    return any(guessed.get(key) is not None for key in ("season", "episode")) or (
        guessed.get("type") == "episode" and guessed.get("date") is not None
    )


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else value


def _int(value: object) -> int | None:
    first = _first(value)
    return first if isinstance(first, int) and not isinstance(first, bool) else None


def _str(value: object) -> str | None:
    first = _first(value)
    return str(first) if first is not None and str(first) else None


def _fold(title: object) -> object:
    return " ".join(title.casefold().split()) if isinstance(title, str) else title


def generated(count: int) -> list[tuple[str, Truth]]:
    corpus = Corpus(rows=max(count, 1000))
    out = []
    for release in releases(corpus, count):
        c = release.classification
        out.append(
            (
                release.name,
                Truth(c.content_type, c.title, c.year, (c.season, c.episode), c.resolution),
            )
        )
    return out


def real() -> list[tuple[str, Truth]] | None:
    try:
        import guessit
        import yaml
    except ImportError:
        return None
    folder = Path(guessit.__file__).parent / "test"
    out: list[tuple[str, Truth]] = []
    for file in ("movies.yml", "episodes.yml"):
        path = folder / file
        if not path.exists():
            return None
        cases: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        default_type = (cases.get("__default__") or {}).get("type")
        for name, expected in cases.items():
            # Cases with options ran guessit under other settings; "-" cases expect failure.
            if name == "__default__" or not isinstance(name, str) or name.startswith("-"):
                continue
            if not isinstance(expected, dict) or "options" in expected:
                continue
            kind = str(expected.get("type", default_type))
            truth_type = {"movie": ContentType.MOVIE, "episode": ContentType.TV_SHOW}.get(kind)
            if truth_type is None:
                continue
            has_number = "season" in expected or "episode" in expected
            out.append(
                (
                    name,
                    Truth(
                        truth_type,
                        _str(expected["title"]) if "title" in expected else ...,
                        _int(expected["year"]) if "year" in expected else ...,
                        (_int(expected.get("season")), _int(expected.get("episode")))
                        if has_number
                        else ...,
                        _str(expected["screen_size"]) if "screen_size" in expected else ...,
                    ),
                )
            )
    return out


def _values(result: Classification, truth: Truth) -> Iterator[tuple[object, object]]:
    yield result.content_type, truth.content_type
    yield _fold(result.title), _fold(truth.title) if truth.title is not ... else ...
    yield result.year, truth.year
    yield (result.season, result.episode), truth.season_episode
    yield result.resolution, truth.resolution


# Both readers take turns on slices this long, so load from others on the shared machine falls
# on both alike: a sequential run put a burst on one reader's few seconds.
SLICE = 200


def measure(
    classifiers: Sequence[Classifier], cases: list[tuple[str, Truth]]
) -> list[tuple[float, dict[str, tuple[int, int]]]]:
    """For each classifier, names per second and, per field, (right, asked) over ``cases``."""
    elapsed = [0.0] * len(classifiers)
    results: list[list[Classification]] = [[] for _ in classifiers]
    for start in range(0, len(cases), SLICE):
        names = [name for name, _ in cases[start : start + SLICE]]
        for k, classifier in enumerate(classifiers):
            started = time.perf_counter()
            results[k].extend(classifier(name) for name in names)
            elapsed[k] += time.perf_counter() - started
    return [(len(cases) / e, score(r, cases)) for e, r in zip(elapsed, results, strict=True)]


def score(
    results: list[Classification], cases: list[tuple[str, Truth]]
) -> dict[str, tuple[int, int]]:
    tally = {field: (0, 0) for field in FIELDS}
    for result, (_, truth) in zip(results, cases, strict=True):
        for field, (got, want) in zip(FIELDS, _values(result, truth), strict=True):
            if want is ...:
                continue
            right, asked = tally[field]
            tally[field] = (right + (got == want), asked + 1)
    return tally


def table(title: str, rows: Iterable[tuple[str, float, dict[str, tuple[int, int]]]]) -> str:
    rows = list(rows)
    asked = {field: rows[0][2][field][1] for field in FIELDS}
    lines = [
        f"**{title}**",
        "",
        "| reader | names/s | µs/name | "
        + " | ".join(f"{f} (n={asked[f]})" for f in FIELDS)
        + " |",
        "|:--|--:|--:|" + "--:|" * len(FIELDS),
    ]
    for reader, rate, score in rows:
        cells = [f"{100 * right / n:.1f}%" if n else "–" for right, n in (score[f] for f in FIELDS)]
        lines.append(f"| {reader} | {rate:,.0f} | {1e6 / rate:,.1f} | " + " | ".join(cells) + " |")
    ratio = rows[1][1] / rows[0][1]
    lines += ["", f"ratio (ours / guessit, names/s): **{ratio:,.0f}x**", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=5000, help="generated names (default 5000)")
    parser.add_argument("--real", type=int, default=None, help="at most this many real names")
    parser.add_argument("--solo", type=int, default=50_000, help="names for the solo run")
    args = parser.parse_args(argv)

    classify_before("warm.up.2020.1080p")  # guessit builds its rules on the first call (~120 ms)
    release_name.parse("warm.up.2020.1080p")
    corpora = [(f"generated, {args.names:,} names", generated(args.names))]
    real_cases = real()
    if real_cases is not None and args.real is not None:
        real_cases = real_cases[: args.real]
    if real_cases is None:
        print("guessit's test corpus not found: real-name figures skipped", file=sys.stderr)
    else:
        corpora.append((f"guessit's test corpus, {len(real_cases):,} real names", real_cases))
    for title, cases in corpora:
        print(f"measuring {title} …", file=sys.stderr)
        old, new = measure([classify_before, classify.classify], cases)
        print(table(title, [("guessit (before)", *old), ("release_name (now)", *new)]))
    print(solo(args.solo))
    print(screen(args.solo))
    return 0


def is_banned_before(name: str, banned_keywords: Iterable[str]) -> bool:
    """``classify.is_banned`` before ADR 0010's change: every keyword folded for every name."""
    words = classify._words(name)
    forms = (f" {' '.join(words)} ", f" {' '.join(classify._join_letters(words))} ")
    for keyword in banned_keywords:
        needle = " ".join(classify._words(keyword))
        if needle and any(f" {needle} " in form for form in forms):
            return True
    return False


def screen(count: int, keywords: int = 300) -> str:
    """The banned-name screen, also on every ingested row, old and new, on made-up keywords."""
    names = [name for name, _ in generated(count)]
    banned = [f"nosuchword{i}" if i % 3 else f"no such{i} phrase" for i in range(keywords)]
    rates = []
    for check in (is_banned_before, classify.is_banned):
        started = time.perf_counter()
        for name in names:
            check(name, banned)
        rates.append(count / (time.perf_counter() - started))
    return (
        f"is_banned with {keywords} keywords, {count:,} names: before "
        f"{1e6 / rates[0]:.1f} µs/name, now **{1e6 / rates[1]:.1f} µs/name** "
        f"(ratio {rates[1] / rates[0]:,.0f}x)\n"
    )


def solo(count: int) -> str:
    names = [name for name, _ in generated(count)]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for name in names:
            classify.classify(name)
        best = min(best, time.perf_counter() - started)
    return (
        f"release_name alone, {count:,} generated names, best of 3 passes: "
        f"**{count / best:,.0f} names/s, {1e6 * best / count:.1f} µs/name** on one core\n"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
