"""Ingest: `keel bittorrented import` of one generated dump, against the path issue 10 was filed on.

One JSON-lines file in bitmagnet's import format (what a user imports), written from the first
N names of ``bittorrented_names.py``, whose true classification is known. Then each path imports
that file into a fresh SQLite database, each in its own process, timed from start to exit:

* **now**: ``python -m keel bittorrented import FILE --json``, the user's command as it is:
  ``importer.Reader``, ``Indexer.ingest`` (screen, ``classify.classify``), ``bulk.load``.
  It runs twice, before and after the old path, so a change in the machine's load shows.
* **at filing**: the same command with the classifier issue 10 was filed against: guessit's
  reading and that day's rules (``classify_before``, kept verbatim in
  ``bittorrented_classify.py``) put in place of ``classify.classify``, feeding the same reader
  and the same writes. ~100 rows/s, so ``--old-names`` may give it a sample: the file's first
  K lines, in a file of their own; the output says so.

Each database is then read back (``torrent_search`` joined to ``torrents``) and what was STORED is
scored against the generator's labels: content type, title (case- and space-folded), year,
season/episode, resolution. rows/s counts the whole command (interpreter start, migrations,
the import, exit); "startup s" is the same command on an empty file, and CPU s is the child's
user + system time, which a shared machine's load moves less than the wall clock.

    PYTHONPATH=src:bench .venv/bin/python bench/bittorrented_ingest.py --names 100000
    PYTHONPATH=src:bench .venv/bin/python bench/bittorrented_ingest.py --names 20000 \
        --old-names 2000 --alternatives 2000

Exit status 1 when a database does not hold exactly the rows its file had.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bittorrented_classify
import keel
from bittorrented_classify import FIELDS, Truth, classify_before, measure, score
from bittorrented_names import Corpus, releases
from keel.bittorrented.naming import classify
from keel.bittorrented.naming.classify import Classification, ContentType

# argv[1] of this script's child that runs `keel` with another classifier in place.
AS_FILED, UNCLASSIFIED = "as-filed", "unclassified"
TARGET_ROWS_PER_S = 5_000
# Issue 10: at least as accurate as guessit on these, within 2 points on the rest.
NO_WORSE = ("content type", "year")
WITHIN_POINTS = 2.0
# Each path's table label.
NEW, OLD = "now: keel bittorrented import", "at filing: guessit classifier"
BARE = "now, classification off (the writes' ceiling)"


@dataclass(frozen=True, slots=True)
class Run:
    label: str
    lines: int  # lines in the file it imported
    report: dict[str, object]  # the command's --json reply
    seconds: float  # the whole command, wall clock
    cpu_seconds: float  # the child's user + system time
    startup_seconds: float  # the same command on an empty file
    stored: dict[str, Classification]  # info hash (hex) -> what the database holds
    torrents: int  # rows in ``torrents``
    load: float  # the machine's 1-minute load average when the command ended

    @property
    def rate(self) -> float:
        return self.lines / self.seconds

    @property
    def rate_after_startup(self) -> float:
        return self.lines / max(self.seconds - self.startup_seconds, 1e-9)


# ---------------------------------------------------------------------------------------------
# The dump


def write_dump(path: Path, count: int) -> tuple[dict[str, Truth], dict[str, str]]:
    """Write ``count`` generated releases as bitmagnet import lines; their labels and names by
    hash, in file order."""
    truth: dict[str, Truth] = {}
    names: dict[str, str] = {}
    with path.open("w", encoding="utf-8") as out:
        for release in releases(Corpus(rows=max(count, 1000)), count):
            info_hash = release.info_hash.hex()
            c = release.classification
            truth[info_hash] = Truth(
                c.content_type, c.title, c.year, (c.season, c.episode), c.resolution
            )
            names[info_hash] = release.name
            published = datetime.fromtimestamp(release.published_ts, UTC)
            record = {
                "infoHash": info_hash,
                "name": release.name,
                "size": release.size,
                "publishedAt": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source": "dht",
                "seeders": release.seeders,
                "leechers": release.leechers,
            }
            out.write(json.dumps(record) + "\n")
    return truth, names


def head(source: Path, target: Path, lines: int) -> None:
    with source.open("rb") as read, target.open("wb") as write:
        for _, line in zip(range(lines), read, strict=False):
            write.write(line)


# ---------------------------------------------------------------------------------------------
# Running a path


def command(path: str, dump: Path) -> list[str]:
    args = ["bittorrented", "import", str(dump), "--json"]
    if path == NEW:
        return [sys.executable, "-m", "keel", *args]
    child = AS_FILED if path == OLD else UNCLASSIFIED
    return [sys.executable, str(Path(__file__).resolve()), child, *args]


def environment(data_dir: Path) -> dict[str, str]:
    # The child imports the same keel as this process, and this script's folder for the old path.
    src = str(Path(keel.__file__).resolve().parents[1])
    bench = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (src, bench, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "KEEL_DATA_DIR": str(data_dir),
        "KEEL_BITTORRENTED_DATABASE_URL": "",  # the default: SQLite under the data dir
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[dict[str, object], float, float]:
    """Run ``argv``; its --json reply, wall seconds and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds, cpu


def startup(path: str, workdir: Path) -> float:
    empty = workdir / "empty.jsonl"
    empty.touch()
    data_dir = workdir / f"startup-{'new' if path == NEW else 'old'}"
    _, seconds, _ = timed(command(path, empty), environment(data_dir))
    shutil.rmtree(data_dir, ignore_errors=True)
    return seconds


def run(
    path: str, label: str, dump: Path, lines: int, data_dir: Path, startup_seconds: float
) -> Run:
    print(f"importing {lines:,} lines: {label} …", file=sys.stderr, flush=True)
    report, seconds, cpu = timed(command(path, dump), environment(data_dir))
    stored, torrents = read_back(data_dir / "bittorrented.db")
    print(f"  {seconds:,.1f} s, {lines / seconds:,.0f} rows/s", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    return Run(label, lines, report, seconds, cpu, startup_seconds, stored, torrents, load)


def read_back(database: Path) -> tuple[dict[str, Classification], int]:
    """What the import stored: each torrent's classification columns, and the torrents count."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT t.info_hash, s.content_type, s.title, s.year, s.season, s.episode, "
            "s.resolution FROM torrents t JOIN torrent_search s ON s.info_hash = t.info_hash"
        ).fetchall()
        torrents = int(conn.execute("SELECT count(*) FROM torrents").fetchone()[0])
    stored = {
        bytes(h).hex(): Classification(
            ContentType(kind),
            title=title,
            year=year,
            season=season,
            episode=episode,
            resolution=resolution,
        )
        for h, kind, title, year, season, episode, resolution in rows
    }
    return stored, torrents


# ---------------------------------------------------------------------------------------------
# Scoring and report


def accuracy(run: Run, truth: dict[str, Truth], hashes: Sequence[str]) -> dict[str, float]:
    """Per field, the percentage of ``hashes`` whose stored value is right (a missing row is
    wrong in every field)."""
    missing = Classification(ContentType.UNKNOWN, title="\x00missing")
    results = [run.stored.get(h, missing) for h in hashes]
    tally = score(results, [("", truth[h]) for h in hashes])
    return {field: 100 * right / asked if asked else 0.0 for field, (right, asked) in tally.items()}


def speed_table(runs: Sequence[Run]) -> list[str]:
    lines = [
        "| path | lines | stored | command s | startup s | rows/s | rows/s after startup "
        "| CPU s | CPU µs/row | load after |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.label} | {r.lines:,} | {len(r.stored):,} | {r.seconds:,.1f} | "
            f"{r.startup_seconds:.1f} | {r.rate:,.0f} | {r.rate_after_startup:,.0f} | "
            f"{r.cpu_seconds:,.1f} | {1e6 * r.cpu_seconds / r.lines:,.0f} | {r.load:.2f} |"
        )
    return lines


def accuracy_table(rows: Iterable[tuple[str, int, dict[str, float]]]) -> list[str]:
    lines = [
        "| path | names scored | " + " | ".join(FIELDS) + " |",
        "|:--|--:|" + "--:|" * len(FIELDS),
    ]
    for label, count, percent in rows:
        cells = " | ".join(f"{percent[f]:.1f}%" for f in FIELDS)
        lines.append(f"| {label} | {count:,} | {cells} |")
    return lines


def verdicts(old: dict[str, float], new: dict[str, float]) -> list[str]:
    out = []
    for field in FIELDS:
        gap = new[field] - old[field]
        if field in NO_WORSE:
            ok, rule = gap >= 0, "at least guessit's"
        else:
            ok, rule = gap >= -WITHIN_POINTS, f"within {WITHIN_POINTS:g} points of guessit"
        out.append(f"- {field}: {gap:+.1f} points, {rule}: **{'yes' if ok else 'NO'}**")
    return out


def header(args: argparse.Namespace, dump: Path, started: datetime, load: str) -> list[str]:
    return [
        f"**bittorrented ingest — {started:%Y-%m-%d %H:%M} UTC**, {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; load average (1, 5, 15 min) at the start {load}, "
        f"at the end {_load()}",
        "",
        f"File: {args.names:,} generated names, bitmagnet JSON lines, "
        f"{dump.stat().st_size / 1e6:,.1f} MB, no file lists.",
    ]


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def report(
    args: argparse.Namespace,
    dump: Path,
    truth: dict[str, Truth],
    new: list[Run],
    old: Run | None,
    start: tuple[datetime, str],
) -> tuple[str, bool]:
    """The Markdown report, and whether every database holds exactly its file's rows."""
    lines = header(args, dump, *start)
    if old is not None and old.lines < args.names:
        lines.append(
            f"**The old path ran on a sample**: the file's first {old.lines:,} lines "
            f"({old.lines / args.names:.1%}); the new path imported all {args.names:,}. "
            "Its accuracy is compared with the new path's on the same sample."
        )
    elif old is None:
        lines.append("The old path was skipped (`--old-names 0`).")
    runs = [new[0], *([old] if old is not None else []), *new[1:]]
    lines += ["", *speed_table(runs), ""]

    complete = all(len(r.stored) == r.lines == r.torrents for r in runs)
    for r in runs:
        lines.append(
            f"{r.label}: stored {len(r.stored):,} of {r.lines:,} rows "
            f"({r.torrents:,} torrents; the command said {json.dumps(r.report)})"
        )
    slowest = min(r.rate for r in new)
    met = "met" if slowest >= TARGET_ROWS_PER_S else "NOT met"
    lines += [
        "",
        f"Target ≥ {TARGET_ROWS_PER_S:,} rows/s on the user's path (slower of its runs, whole "
        f"command): {slowest:,.0f} rows/s, **{met}**.",
    ]
    if old is not None:
        mean_new = sum(r.rate for r in new) / len(new)
        cpu_new = sum(r.cpu_seconds / r.lines for r in new) / len(new)
        lines += [
            f"Ratio now / at filing, rows/s: **{mean_new / old.rate:,.0f}x** (mean of the "
            f"{len(new)} runs of now); CPU per row: {old.cpu_seconds / old.lines / cpu_new:,.0f}x "
            "less.",
        ]

    everything = list(truth)
    acc_rows: list[tuple[str, int, dict[str, float]]] = []
    comparison: tuple[dict[str, float], dict[str, float]] | None = None
    if old is not None:
        sample = everything[: old.lines]
        old_acc, new_acc = accuracy(old, truth, sample), accuracy(new[0], truth, sample)
        comparison = (old_acc, new_acc)
        acc_rows += [(OLD, len(sample), old_acc), (NEW, len(sample), new_acc)]
    if old is None or old.lines < len(everything):
        acc_rows.append(
            (f"{NEW} (whole file)", len(everything), accuracy(new[0], truth, everything))
        )
    lines += ["", "Accuracy of what was stored, against the generator's labels:", ""]
    lines += accuracy_table(acc_rows)
    if comparison is not None:
        lines += ["", "Now against at filing, on the same names (issue 10's bar):", ""]
        lines += verdicts(*comparison)
    if any(r.stored != new[0].stored for r in new[1:]):
        lines += ["", "**The runs of the new path stored different classifications.**"]
        complete = False
    return "\n".join(lines) + "\n", complete


# ---------------------------------------------------------------------------------------------
# Alternatives (ADR 0012): other ways to classify at ingest, on the old path's sample


def _as_guessit(**fields: Any) -> dict[str, Any]:
    """Another parser's reading under guessit's keys, so that day's rules can run over it."""
    return {k: v for k, v in fields.items() if v is not None and v != []}


def read_ptt(name: str) -> dict[str, Any]:
    """parsett (``import PTT``)."""
    got = importlib.import_module("PTT").parse_title(name)
    return _as_guessit(
        title=got.get("title"), year=got.get("year"), season=got.get("seasons"),
        episode=got.get("episodes"), screen_size=got.get("resolution"),
        video_codec=got.get("codec"), release_group=got.get("group"),
        audio_codec=got.get("audio"),
    )  # fmt: skip


def read_ptn(name: str) -> dict[str, Any]:
    """parse-torrent-title (``import PTN``)."""
    got = importlib.import_module("PTN").parse(name)
    return _as_guessit(
        title=got.get("title"), year=got.get("year"), season=got.get("season"),
        episode=got.get("episode"), screen_size=got.get("resolution"),
        video_codec=got.get("codec"), release_group=got.get("encoder") or got.get("group"),
        audio_codec=got.get("audio"),
    )  # fmt: skip


def with_reading(reading: Callable[[str], dict[str, Any]]) -> Callable[[str], Classification]:
    """That day's rules (``classify_before``) over another parser's reading instead of guessit's."""

    def classify_name(name: str) -> Classification:
        saved = bittorrented_classify.guess
        bittorrented_classify.guess = reading  # type: ignore[assignment]
        try:
            return classify_before(name)
        finally:
            bittorrented_classify.guess = saved

    return classify_name


def pool_rate(names: list[str], workers: int) -> float:
    """guessit's classifier in ``workers`` processes: names/s, pickling and all, warmed up."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(classify_before, ["Warm.Up.2020.1080p.WEB.x264-GRP"] * workers * 4))
        started = time.perf_counter()
        list(pool.map(classify_before, names, chunksize=32))
        return len(names) / (time.perf_counter() - started)


_SEPARATORS = re.compile(r"([\s._\-\[\]()]+)")
_TAG = re.compile(
    r"(?i)\d{3,4}p|s\d{1,2}(?:e\d{1,3})?|x26[45]|h26[45]|hevc|xvid|av1|bluray|web|dl|webrip|"
    r"hdtv|hdrip|bdrip|dvdrip|remux|amzn|nf|flac|mp3|aac|aac2|dts|dd5|ac3|atmos|truehd|kbps|"
    r"extended|repack|proper|10bit|hdr|unrated|directors|cut|complete|season|discography|"
    r"x64|x86|win64|macos|linux|portable|keygen|incl|v\d+"
)


_WORDS = re.compile(r"@(?:[\s._-]+@)*")


def shape(name: str) -> str:
    """A name with its words and numbers abstracted, its tags and separators kept: the key a
    shape cache would store guessit's reading under (which part is the title, the year…)."""
    out = []
    for part in _SEPARATORS.split(name):
        if not part or _SEPARATORS.fullmatch(part):
            out.append(part)
        elif part.isdigit():
            out.append("Y" if len(part) == 4 and part[:2] in ("19", "20") else f"N{len(part)}")
        elif (tag := _TAG.fullmatch(part)) is not None:
            out.append(re.sub(r"\d+", "#", tag.group(0).lower()))
        else:
            out.append("@")
    # A title is a run of words whatever its length: "@.@.@" and "@.@" are one shape.
    return _WORDS.sub("W", "".join(out))


def alternatives(
    truth: dict[str, Truth], names: dict[str, str], sample: int, new_rate: float, bare: Run
) -> list[str]:
    hashes = list(truth)[:sample]
    cases = [(names[h], truth[h]) for h in hashes]
    contenders: list[tuple[str, Callable[[str], Classification]]] = [
        ("guessit + that day's rules (at filing)", classify_before)
    ]
    for label, module, reading in (
        ("parsett", "parsett", read_ptt),
        ("parse-torrent-title", "parse-torrent-title", read_ptn),
    ):
        try:
            reading("Warm.Up.2020.1080p.WEB.x264-GRP")
        except ImportError:
            print(f"{module} not installed: skipped", file=sys.stderr)
            continue
        contenders.append((f"{label} {version(module)} + that day's rules", with_reading(reading)))
    contenders.append(("release_name + classify (now)", classify.classify))
    print(f"measuring {len(contenders)} readers on {len(cases):,} names …", file=sys.stderr)
    measured = measure([c for _, c in contenders], cases)
    workers = os.cpu_count() or 1
    pooled = pool_rate([n for n, _ in cases], workers)

    lines = [
        f"Classification alone, in this process, on the first {len(cases):,} names (the readers "
        f"take turns on slices of {bittorrented_classify.SLICE}); guessit in a pool of {workers} "
        "processes on the same names:",
        "",
        "| reader | names/s | µs/name | " + " | ".join(FIELDS) + " |",
        "|:--|--:|--:|" + "--:|" * len(FIELDS),
    ]
    for (label, _), (rate, tally) in zip(contenders, measured, strict=True):
        cells = " | ".join(f"{100 * r / n:.1f}%" if n else "–" for r, n in tally.values())
        lines.append(f"| {label} | {rate:,.0f} | {1e6 / rate:,.1f} | {cells} |")
        if label.startswith("guessit"):
            guessit_us = 1e6 / rate
            same = " | ".join("(same)" for _ in FIELDS)
            lines.append(
                f"| guessit in {workers} processes | {pooled:,.0f} | {1e6 / pooled:,.1f} | {same} |"
            )

    all_names = [names[h] for h in truth]
    distinct = len({shape(n) for n in all_names})
    real = bittorrented_classify.real() or []
    real_distinct = len({shape(n) for n, _ in real})
    misses = distinct / len(all_names)
    lines += [
        "",
        "The user's import with classification off (`classify.classify` answering `unknown`; "
        f"what a deferred classification job would let ingest reach): **{bare.rate:,.0f} "
        "rows/s**, against "
        f"{new_rate:,.0f} with it (mean of the runs above): classification costs the path "
        f"{100 * (1 - new_rate / bare.rate):.0f}% of its rate.",
        f"Shape cache: {len(all_names):,} generated names have {distinct:,} shapes (a first sight "
        f"of each is a miss: {misses:.1%}); guessit on the misses alone caps ingest at "
        f"{1e6 / (misses * guessit_us):,.0f} rows/s."
        + (
            f" guessit's {len(real):,} real test names have {real_distinct:,} shapes "
            f"({real_distinct / len(real):.0%} misses)."
            if real
            else ""
        ),
    ]
    return lines


def version(distribution: str) -> str:
    from importlib.metadata import version as installed

    return installed(distribution)


# ---------------------------------------------------------------------------------------------


def unclassified(name: str, files: object = ()) -> Classification:
    return Classification(ContentType.UNKNOWN)


def child(mode: str, argv: list[str]) -> None:
    """This script's child: `keel` with the classifier of issue 10's day (``as-filed``) or none
    (``unclassified``) in place of ``classify.classify``, which Indexer reads names through."""
    from keel.cli import main

    classify.classify = classify_before if mode == AS_FILED else unclassified
    sys.argv = ["keel", *argv]
    main()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=100_000, help="lines in the dump")
    parser.add_argument(
        "--old-names",
        type=int,
        default=None,
        help="lines the old path imports (the file's first; default all, 0 skips it)",
    )
    parser.add_argument(
        "--alternatives",
        type=int,
        default=0,
        metavar="K",
        help="also measure the alternatives of ADR 0012 (other parsers, guessit in a process "
        "pool, a shape cache, no classification) on the first K names",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="kept; default a temp dir")
    args = parser.parse_args(argv)
    old_names = args.names if args.old_names is None else min(args.old_names, args.names)
    if args.names < 1 or old_names < 0:
        parser.error("--names must be positive and --old-names not negative")

    start = (datetime.now(UTC), _load())
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="keel-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        dump = workdir / f"names-{args.names}.jsonl"
        print(f"writing {args.names:,} names to {dump} …", file=sys.stderr, flush=True)
        truth, names = write_dump(dump, args.names)
        old_dump = dump
        if 0 < old_names < args.names:
            old_dump = workdir / f"names-{args.names}-first-{old_names}.jsonl"
            head(dump, old_dump, old_names)
        for name in ("new-1", "old", "new-2", "bare"):
            shutil.rmtree(workdir / name, ignore_errors=True)

        new_startup = startup(NEW, workdir)
        new = [run(NEW, f"{NEW} (1)", dump, args.names, workdir / "new-1", new_startup)]
        old = None
        if old_names:
            old_startup = startup(OLD, workdir)
            old = run(OLD, OLD, old_dump, old_names, workdir / "old", old_startup)
            new.append(run(NEW, f"{NEW} (2)", dump, args.names, workdir / "new-2", new_startup))
        text, complete = report(args, dump, truth, new, old, start)
        if args.alternatives:
            bare = run(BARE, BARE, dump, args.names, workdir / "bare", new_startup)
            complete = complete and len(bare.stored) == bare.lines
            mean_new = sum(r.rate for r in new) / len(new)
            sample = min(args.alternatives, args.names)
            text += "\n" + "\n".join(alternatives(truth, names, sample, mean_new, bare)) + "\n"
        print(text)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if complete else 1


if __name__ == "__main__":
    if sys.argv[1:2] in ([AS_FILED], [UNCLASSIFIED]):
        child(sys.argv[1], sys.argv[2:])
    else:
        sys.exit(main(sys.argv[1:]))
