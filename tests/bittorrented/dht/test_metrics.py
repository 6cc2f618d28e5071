"""RateWatch: a crawler that stops ingesting is flagged, in the log and as a gauge."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from keel.bittorrented.dht.metrics import RateWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stalled_gauge() -> float | None:
    return REGISTRY.get_sample_value("bittorrented_crawler_stalled")


def test_a_fresh_watch_is_not_stalled_before_one_full_window() -> None:
    clock = Clock()
    watch = RateWatch(window_seconds=60, min_per_minute=10, clock=clock)
    clock.now += 59
    assert watch.check() is False
    assert stalled_gauge() == 0


def test_no_events_for_a_window_is_a_stall_logged_once_and_set_as_gauge() -> None:
    clock = Clock()
    watch = RateWatch(window_seconds=60, min_per_minute=10, clock=clock)
    clock.now += 60
    with capture_logs() as logs:
        assert watch.check() is True
        clock.now += 5
        assert watch.check() is True
    assert stalled_gauge() == 1
    warnings = [log for log in logs if log["log_level"] == "warning"]
    assert [w["event"] for w in warnings] == ["crawler_stalled"]
    assert warnings[0]["per_minute"] == 0


def test_enough_events_in_the_window_recover_from_a_stall() -> None:
    clock = Clock()
    watch = RateWatch(window_seconds=60, min_per_minute=10, clock=clock)
    clock.now += 60
    assert watch.check() is True
    watch.record(12)
    with capture_logs() as logs:
        assert watch.check() is False
    assert stalled_gauge() == 0
    assert [log["event"] for log in logs] == ["crawler_recovered"]


def test_rate_counts_only_events_inside_the_window() -> None:
    clock = Clock()
    watch = RateWatch(window_seconds=60, min_per_minute=5, clock=clock)
    clock.now += 60
    watch.record(30)  # 30 in the last minute
    assert watch.per_minute() == pytest.approx(30)
    clock.now += 30
    watch.record(3)
    assert watch.per_minute() == pytest.approx(33)
    clock.now += 31  # the 30 fell out of the window
    assert watch.per_minute() == pytest.approx(3)
    assert watch.check() is True
    rate = REGISTRY.get_sample_value("bittorrented_crawler_ingestion_rate_per_minute")
    assert rate == pytest.approx(3)


def test_rate_before_a_full_window_is_over_the_time_so_far() -> None:
    clock = Clock()
    watch = RateWatch(window_seconds=600, min_per_minute=1, clock=clock)
    clock.now += 30
    watch.record(10)
    assert watch.per_minute() == pytest.approx(20)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        RateWatch(window_seconds=0, min_per_minute=1)
