"""keel.core.sqlsniff: classic payloads are logged and counted; legitimate text about SQL (and
anything else) passes untouched; it never raises and never backtracks."""

from __future__ import annotations

import time

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from keel.core import sqlsniff

LEGITIMATE = [
    "SQL SELECT basics",  # the topic the original's filter refused
    "DROP shipping costs",
    "Learn UNION types in TypeScript",
    "Learn SQL: SELECT, INSERT, UPDATE, DELETE and CREATE TABLE",
    "UNION vs UNION ALL in PostgreSQL",
    "How to SELECT rows; then DROP the noise",
    "O'Reilly's guide -- part 2",
    "Rock 'n' roll for beginners; or not",
    "C# and F# in 30 days",
    "Email me at a@b.example -- or don't",
    "Time management: sleep 8 hours",
    "Boolean logic: true or false = ?",
    "Python's sys.path and the @ operator",
    "Exec summary writing; execution plans",
    "",
]

PAYLOADS = [
    ("' OR '1'='1", "quote_tautology"),
    ("admin' OR 1=1 --", "quote_tautology"),
    ('" or ""="', "quote_tautology"),
    ("x') AND ('a'='a", "quote_tautology"),
    ("1 OR 1=1", "numeric_tautology"),
    ("admin'--", "quote_then_comment"),
    ("admin' #", "quote_then_comment"),
    ("1'/*", "quote_then_comment"),
    ("1; DROP TABLE users", "stacked_statement"),
    ("x'; DELETE FROM accounts WHERE 1", "stacked_statement"),
    ("'; EXEC xp_cmdshell 'dir'", "stacked_statement"),
    ("' UNION SELECT username, password FROM users--", "union_select"),
    ("1 UNION ALL SELECT NULL,NULL,NULL", "union_select"),
    ("-1 union select 1,2,3", "union_select"),
    ("1 AND SLEEP(5)", "time_delay"),
    ("'; WAITFOR DELAY '0:0:5'--", "time_delay"),
    ("1;select pg_sleep(10)", "time_delay"),
    ("' AND 1=(SELECT COUNT(*) FROM information_schema.tables)", "system_catalogue"),
    ("1 and @@version > 0", "system_catalogue"),
    ("' union select name from sqlite_master", "system_catalogue"),
]


def _count(field: str, pattern: str) -> float:
    labels = {"field": field, "pattern": pattern}
    return REGISTRY.get_sample_value("keel_sqli_suspected_total", labels) or 0.0


@pytest.mark.parametrize("text", LEGITIMATE)
def test_legitimate_text_passes_unlogged(text: str) -> None:
    with structlog.testing.capture_logs() as logs:
        assert sqlsniff.sniff(text, field="test.goal") == ()
    assert logs == []


@pytest.mark.parametrize(("payload", "pattern"), PAYLOADS)
def test_a_classic_payload_is_logged_and_counted(payload: str, pattern: str) -> None:
    before = _count("test.goal", pattern)
    with structlog.testing.capture_logs() as logs:
        matched = sqlsniff.sniff(payload, field="test.goal")
    assert pattern in matched
    assert _count("test.goal", pattern) == before + 1
    [entry] = logs
    assert entry["event"] == "sqli_suspected"
    assert entry["log_level"] == "warning"
    assert entry["field"] == "test.goal"
    assert entry["patterns"] == list(matched)
    assert entry["length"] == len(payload)
    assert len(entry["sha256"]) == 16
    # The text itself is never logged, in any field.
    assert all(payload not in str(value) for value in entry.values())


def test_the_same_text_logs_the_same_hash() -> None:
    with structlog.testing.capture_logs() as logs:
        sqlsniff.sniff("' OR '1'='1", field="test.a")
        sqlsniff.sniff("' OR '1'='1", field="test.b")
        sqlsniff.sniff("' OR '2'='2", field="test.a")
    assert logs[0]["sha256"] == logs[1]["sha256"] != logs[2]["sha256"]


def test_only_the_start_of_a_long_text_is_examined() -> None:
    long_text = "a" * sqlsniff.MAX_SCANNED_CHARS + "' OR '1'='1"
    assert sqlsniff.sniff(long_text, field="test.goal") == ()


@pytest.mark.parametrize(
    "text",
    [
        "'" + " " * 9_000 + "x",
        "' or" + " " * 9_000 + "x",
        "' or '" + "a" * 9_000,
        ("' or (" * 1_500),
        "union select " + "a, " * 3_000,
        "; " * 5_000,
        "'" * 10_000,
    ],
)
def test_pathological_text_is_scanned_in_linear_time(text: str) -> None:
    started = time.perf_counter()
    sqlsniff.sniff(text, field="test.goal")
    assert time.perf_counter() - started < 0.5


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(["'", '"', " or ", " OR 1=1", "--", ";", " union select ", "(", ")"]),
        ),
        max_size=20,
    ).map("".join)
)
def test_sniff_never_raises_and_only_names_known_patterns(text: str) -> None:
    matched = sqlsniff.sniff(text, field="test.fuzz")
    assert set(matched) <= set(sqlsniff.PATTERNS)
