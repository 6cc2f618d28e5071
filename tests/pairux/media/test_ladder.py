from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keel.pairux.host.media import ladder

TOP = len(ladder.LADDER) - 1

conditions = st.builds(
    ladder.Conditions,
    rtt_ms=st.floats(0, 2000, allow_nan=False),
    loss=st.floats(0, 1, allow_nan=False),
    available_bps=st.one_of(st.none(), st.integers(0, 20_000_000)),
)
states = st.builds(ladder.LadderState, rung=st.integers(0, TOP), up_streak=st.integers(0, 2))


@st.composite
def worse_than(draw: st.DrawFn, good: ladder.Conditions) -> ladder.Conditions:
    bps = draw(st.one_of(st.none(), st.integers(0, 20_000_000)))
    if good.available_bps is not None:
        bps = min(bps if bps is not None else good.available_bps, good.available_bps)
    return ladder.Conditions(
        rtt_ms=good.rtt_ms + draw(st.floats(0, 500, allow_nan=False)),
        loss=min(1.0, good.loss + draw(st.floats(0, 0.5, allow_nan=False))),
        available_bps=bps,
    )


@given(states, conditions, st.data())
def test_worse_conditions_never_give_a_higher_rung(
    state: ladder.LadderState, good: ladder.Conditions, data: st.DataObject
) -> None:
    bad = data.draw(worse_than(good))
    assert bad.at_least_as_bad_as(good)
    assert ladder.decide(state, bad).rung <= ladder.decide(state, good).rung


@given(st.lists(conditions, min_size=1, max_size=40), st.data(), st.integers(0, TOP))
def test_a_worse_history_never_ends_higher(
    goods: list[ladder.Conditions], data: st.DataObject, start: int
) -> None:
    bads = [data.draw(worse_than(good)) for good in goods]
    good_state = bad_state = ladder.LadderState(start)
    for good, bad in zip(goods, bads, strict=True):
        good_state, bad_state = ladder.decide(good_state, good), ladder.decide(bad_state, bad)
        assert bad_state.rung <= good_state.rung


@given(st.lists(conditions, min_size=1, max_size=60), st.integers(0, TOP))
def test_every_climb_follows_three_quiet_reports_and_goes_one_rung(
    history: list[ladder.Conditions], start: int
) -> None:
    state = ladder.LadderState(start)
    since_change = 10**6
    for report in history:
        new = ladder.decide(state, report)
        if new.rung > state.rung:
            assert new.rung == state.rung + 1
            assert since_change >= 3  # no flapping: down then straight back up is impossible
        since_change = 1 if new.rung != state.rung else since_change + 1
        state = new


@given(st.integers(1, TOP), st.lists(st.booleans(), min_size=1, max_size=60))
def test_conditions_wobbling_inside_the_band_never_move_the_rung(
    rung: int, flips: list[bool]
) -> None:
    # Both reports sustain ``rung`` but neither invites the next one: hold steady.
    current = ladder.LADDER[rung]
    a = ladder.Conditions(rtt_ms=0, loss=0, available_bps=current.bitrate_bps)
    b = ladder.Conditions(rtt_ms=current.max_rtt_ms, loss=current.max_loss, available_bps=None)
    state = ladder.LadderState(rung)
    for flip in flips:
        state = ladder.decide(state, a if flip else b)
        assert state.rung == rung


def test_a_bad_link_drops_at_once_and_a_good_one_climbs_a_rung_per_three_reports() -> None:
    state = ladder.LadderState(TOP)
    state = ladder.decide(state, ladder.Conditions(rtt_ms=50, loss=0.2, available_bps=300_000))
    assert state.rung == 0
    good = ladder.Conditions(rtt_ms=20, loss=0.0, available_bps=10_000_000)
    rungs = []
    for _ in range(9):
        state = ladder.decide(state, good)
        rungs.append(state.rung)
    assert rungs == [0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_the_worst_viewer_sets_the_pace() -> None:
    reports = [
        ladder.Conditions(rtt_ms=20, loss=0.0, available_bps=None),
        ladder.Conditions(rtt_ms=200, loss=0.01, available_bps=5_000_000),
        ladder.Conditions(rtt_ms=40, loss=0.08, available_bps=900_000),
    ]
    assert ladder.worst(reports) == ladder.Conditions(200, 0.08, 900_000)
    assert ladder.worst([]) == ladder.Conditions()
