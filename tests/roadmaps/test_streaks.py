"""Streak and heatmap arithmetic, checked against a brute-force reading of the same days."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from keel.roadmaps.progress import Day, summarise

TODAY = date(2026, 6, 30)


def brute_longest(days: set[date]) -> int:
    best = 0
    for start in days:
        length = 0
        while start + timedelta(days=length) in days:
            length += 1
        best = max(best, length)
    return best


@given(st.sets(st.integers(min_value=0, max_value=60), max_size=40))
def test_streaks_match_a_brute_force_count(offsets: set[int]) -> None:
    days = {TODAY - timedelta(days=o) for o in offsets}
    seen = summarise({d: Day(d, 1, 0) for d in days}, TODAY, days=90)
    assert seen.longest_streak == brute_longest(days)
    start = TODAY if TODAY in days else TODAY - timedelta(days=1)
    current = 0
    while start - timedelta(days=current) in days:
        current += 1
    assert seen.current_streak == current
    assert len(seen.days) == 90
    assert seen.days[-1].day == TODAY
    assert sum(d.steps_done for d in seen.days) == len(days)
    assert all(0 <= d.level <= 4 for d in seen.days)


def test_a_streak_survives_until_a_whole_day_passes() -> None:
    yesterday = TODAY - timedelta(days=1)
    seen = summarise({yesterday: Day(yesterday, 1, 0)}, TODAY)
    assert seen.current_streak == 1
    seen = summarise({yesterday: Day(yesterday, 1, 0)}, TODAY + timedelta(days=1))
    assert seen.current_streak == 0
