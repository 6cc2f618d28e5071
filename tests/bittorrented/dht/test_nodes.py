"""NodePool: who to ask for BEP 51 samples next, and who to stop asking."""

from __future__ import annotations

from keel.bittorrented.dht.nodes import NodePool, is_public


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


PUBLIC = [("8.8.8.8", 6881), ("1.1.1.1", 6881), ("9.9.9.9", 51413)]


def test_new_nodes_are_due_at_once_then_after_the_minimum_requery() -> None:
    clock = Clock()
    pool = NodePool(min_requery_seconds=60, clock=clock)
    assert pool.add_many(PUBLIC) == 3
    assert sorted(pool.take_due(10)) == sorted(PUBLIC)
    assert pool.take_due(10) == []
    clock.now = 60
    assert sorted(pool.take_due(10)) == sorted(PUBLIC)


def test_take_due_respects_the_limit_and_takes_a_node_once_even_with_zero_requery() -> None:
    pool = NodePool(min_requery_seconds=0, clock=Clock())
    pool.add_many(PUBLIC)
    first = pool.take_due(2)
    assert len(first) == 2
    assert len(set(pool.take_due(10))) == 3


def test_a_reply_interval_postpones_the_node_within_bounds() -> None:
    clock = Clock()
    pool = NodePool(min_requery_seconds=60, max_requery_seconds=3600, clock=clock)
    node = PUBLIC[0]
    pool.add(node)
    pool.take_due(1)
    pool.answered(node, interval_seconds=21600)  # the node asks for 6 hours
    clock.now = 3599
    assert pool.take_due(1) == []
    clock.now = 3600
    assert pool.take_due(1) == [node]


def test_a_node_that_never_answers_is_forgotten() -> None:
    clock = Clock()
    pool = NodePool(min_requery_seconds=1, max_unanswered=3, clock=clock)
    node = PUBLIC[0]
    pool.add(node)
    for _ in range(3):
        assert pool.take_due(1) == [node]
        clock.now += 1
    assert pool.take_due(1) == []
    assert node not in pool


def test_answering_resets_the_unanswered_count() -> None:
    clock = Clock()
    pool = NodePool(min_requery_seconds=1, max_unanswered=2, clock=clock)
    node = PUBLIC[0]
    pool.add(node)
    for _ in range(5):
        assert pool.take_due(1) == [node]
        pool.answered(node, interval_seconds=0)
        clock.now += 1
    assert node in pool


def test_private_loopback_and_junk_addresses_are_refused_unless_allowed() -> None:
    for endpoint in [
        ("127.0.0.1", 1),
        ("10.0.0.5", 1),
        ("192.168.1.1", 1),
        ("::1", 1),
        ("224.0.0.1", 1),
        ("8.8.8.8", 0),
        ("not-an-ip", 1),
    ]:
        assert not is_public(endpoint), endpoint
    assert NodePool().add(("127.0.0.1", 6881)) is False
    assert NodePool(allow_private=True).add(("127.0.0.1", 6881)) is True


def test_excluded_known_and_overflowing_nodes_are_not_added() -> None:
    pool = NodePool(max_nodes=2, exclude=[PUBLIC[0]])
    assert pool.add(PUBLIC[0]) is False
    assert pool.add(PUBLIC[1]) is True
    assert pool.add(PUBLIC[1]) is False
    assert pool.add(PUBLIC[2]) is True
    assert pool.add(("4.4.4.4", 1)) is False
    assert len(pool) == 2


def test_many_answers_do_not_grow_the_schedule_without_bound() -> None:
    clock = Clock()
    pool = NodePool(min_requery_seconds=0, clock=clock)
    pool.add_many(PUBLIC)
    for _ in range(1000):
        for node in PUBLIC:
            pool.answered(node, interval_seconds=0)
    assert len(pool._queue) <= 4 * len(pool) + 64
    assert sorted(pool.take_due(10)) == sorted(PUBLIC)
