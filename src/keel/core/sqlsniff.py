"""Log-only detection of SQL-injection attempts in user text: a signal, never a gate.

Every query Keel runs binds its values as parameters, so text like ``'; DROP TABLE users--``
is stored and shown as text and cannot change a statement. Refusing it would protect nothing
and would refuse legitimate input: the original's keyword filter rejected the topic "SQL
SELECT basics". What an attempt is still worth is a signal (someone is probing), so
:func:`sniff` looks for the *shapes* of classic payloads (a quote closing a string before
``OR 1=1``, a comment or a stacked statement; ``UNION SELECT`` with a column list; time
delays; system catalogues) rather than SQL words, records a warning and a counter, and
returns. It never raises and never changes the text.

The log names the field, the patterns and a SHA-256 prefix of the text, never the text: it
may be personal, and a payload in a log is one more thing to escape later.
"""

from __future__ import annotations

import hashlib
import re

from prometheus_client import Counter

from keel.core.logging import get_logger

log = get_logger("keel.sqlsniff")

SQLI_SUSPECTED = Counter(
    "keel_sqli_suspected_total",
    "User text that looks like an SQL-injection attempt (logged, never refused)",
    ["field", "pattern"],
)

# Only the start of a long text is examined: the shapes below are short, and the work per
# request stays bounded whatever a client sends.
MAX_SCANNED_CHARS = 10_000

# Quantifiers are possessive (``*+``, ``?+``): none gives back what it took, so no input can
# make a pattern backtrack (a quote followed by 10 000 spaces stays linear).
_FLAGS = re.IGNORECASE
_Q = r"['\"`]"  # a quote that would close the string the value was pasted into
_GAP = r"[\s()]*+"  # blanks and parentheses between tokens
PATTERNS: dict[str, re.Pattern[str]] = {
    # ' OR '1'='1   " or ""="   ' OR 1=1   admin') AND ('a'='a
    "quote_tautology": re.compile(
        _Q + _GAP + r"(?:or|and|\|\||&&)" + _GAP + _Q + r"?+(\w*+)" + _Q + r"?+\s*+"
        r"(?:=|<>|!=|like\b)\s*+" + _Q + r"?+\1(?!\w)",
        _FLAGS,
    ),
    # 1 OR 1=1   id=5 and 2=2
    "numeric_tautology": re.compile(r"\b(?:or|and)\s++(\d++)\s*+=\s*+\1(?!\w)", _FLAGS),
    # admin'--   x' #   1')/*
    "quote_then_comment": re.compile(_Q + r"[\s)]*+(?:--|#|/\*)", _FLAGS),
    # '; DROP TABLE users   1; DELETE FROM x   ; EXEC xp_cmdshell
    "stacked_statement": re.compile(
        r";\s*+(?:drop\s++(?:table|database|schema|view|index)\b|delete\s++from\b|"
        r"insert\s++into\b|update\s++\w++\s++set\b|truncate\s++(?:table\s++)?+\w|"
        r"alter\s++table\b|create\s++(?:table|user|function)\b|exec(?:ute)?+\s|shutdown\b)",
        _FLAGS,
    ),
    # ' UNION SELECT username, password FROM users   1 UNION ALL SELECT NULL,NULL
    "union_select": re.compile(
        r"\bunion(?:\s++all|\s++distinct)?+\s++select\s++(?:null\b|\d++\s*+,|@@|char\s*+\(|"
        r"concat\s*+\(|0x[0-9a-f]|[\w.]++(?:\s*+,\s*+[\w.]++)++\s++from\b)",
        _FLAGS,
    ),
    # ' AND SLEEP(5)   ; WAITFOR DELAY '0:0:5'   pg_sleep(10)   BENCHMARK(1000000,MD5(1))
    "time_delay": re.compile(
        r"\b(?:sleep|pg_sleep|benchmark)\s*+\(\s*+\d|\bwaitfor\s++delay\s++" + _Q, _FLAGS
    ),
    # information_schema.tables   @@version   xp_cmdshell   sqlite_master   pg_shadow
    "system_catalogue": re.compile(
        r"\binformation_schema\s*+\.|@@version\b|\bxp_cmdshell\b|\bsqlite_master\b|"
        r"\bpg_(?:shadow|user|catalog\.)|\bsys\.(?:objects|tables|columns)\b|\bmysql\.user\b",
        _FLAGS,
    ),
}


def sniff(text: str, *, field: str) -> tuple[str, ...]:
    """The names of the :data:`PATTERNS` ``text`` matches (in their order; empty if none).

    When one matches, logs ``sqli_suspected`` (``field``, the pattern names, the text's
    length and SHA-256 prefix) and counts each pattern in ``keel_sqli_suspected_total``.
    ``field`` names where the text came from (``"roadmaps.goal"``); keep it a fixed string,
    it is a metric label. Never raises, never blocks: the caller goes on with ``text``.
    """
    try:
        scanned = text[:MAX_SCANNED_CHARS]
        matched = tuple(name for name, pattern in PATTERNS.items() if pattern.search(scanned))
        if matched:
            for name in matched:
                SQLI_SUSPECTED.labels(field, name).inc()
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            log.warning(
                "sqli_suspected",
                field=field,
                patterns=list(matched),
                length=len(text),
                sha256=digest,
            )
        return matched
    except Exception:  # a detector must never break the request it watches
        log.exception("sqlsniff_failed", field=field)
        return ()
