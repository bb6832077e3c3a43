"""Finding source messages among a target folder's by content (engine.matching), pure."""

from datetime import datetime, timedelta, timezone

from engine.matching import (
    DATE_REPLACED,
    HEADERS_REWRITTEN,
    LINE_END_ADDED,
    Candidate,
    alterations,
    match,
)

WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


class Bodies:
    """Body digests by ref on both sides, counting how often they are asked for."""

    def __init__(self, source: dict[str, str], target: dict[str, str]) -> None:
        self.source, self.target, self.calls = source, target, 0

    def __call__(self, source_refs: list[str], target_refs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        self.calls += 1
        return ({r: self.source[r] for r in source_refs if r in self.source},
                {r: self.target[r] for r in target_refs if r in self.target})


def test_one_to_one_pairs_by_identity_within_the_size_slack_without_reading_bodies() -> None:
    bodies = Bodies({}, {})
    sources = [Candidate("1", "a", 100), Candidate("2", "b", 200), Candidate("3", "c", 300)]
    targets = [Candidate("10", "a", 100), Candidate("11", "b", 202), Candidate("12", "x", 300)]
    assert match(sources, targets, bodies) == {"1": "10", "2": "11"}
    assert bodies.calls == 0


def test_sizes_further_apart_are_settled_by_body_digest() -> None:
    bodies = Bodies({"1": "d1", "2": "d2"}, {"10": "d1", "11": "other"})
    sources = [Candidate("1", "a", 100), Candidate("2", "b", 100)]
    targets = [Candidate("10", "a", 130), Candidate("11", "b", 90)]
    assert match(sources, targets, bodies) == {"1": "10"}
    assert bodies.calls == 1


def test_duplicates_are_a_multiset() -> None:
    """Three byte-identical source messages, one copy on the target: two are still to copy."""
    bodies = Bodies({"1": "d", "2": "d", "3": "d"}, {"10": "d"})
    sources = [Candidate(r, "a", 100) for r in ("1", "2", "3")]
    pairs = match(sources, [Candidate("10", "a", 100)], bodies)
    assert list(pairs.values()) == ["10"] and len(pairs) == 1


def test_byte_identical_copies_keep_their_own_dates() -> None:
    bodies = Bodies({"1": "d", "2": "d"}, {"10": "d", "11": "d"})
    sources = [Candidate("1", "a", 5, 100), Candidate("2", "a", 5, 200)]
    targets = [Candidate("10", "a", 5, 200), Candidate("11", "a", 5, 100)]
    assert match(sources, targets, bodies) == {"1": "11", "2": "10"}
    # where the target replaced every date, they still pair
    moved = [Candidate("10", "a", 5, 999), Candidate("11", "a", 5, 999)]
    assert sorted(match(sources, moved, bodies).values()) == ["10", "11"]


def test_colliding_identities_with_different_bodies_pair_by_content() -> None:
    """Messages without Message-ID and with equal headers (one identity) but other bodies."""
    bodies = Bodies({"1": "x", "2": "y", "3": "z"}, {"10": "z", "11": "x", "12": "q"})
    sources = [Candidate(r, "same", 50) for r in ("1", "2", "3")]
    targets = [Candidate(r, "same", 50) for r in ("10", "11", "12")]
    assert match(sources, targets, bodies) == {"1": "11", "3": "10"}


def test_unreadable_messages_are_never_paired() -> None:
    bodies = Bodies({}, {"10": "d"})
    assert match([Candidate("1", "a", 1), Candidate("2", "a", 1)], [Candidate("10", "a", 1)], bodies) == {}


def test_each_target_message_is_used_once() -> None:
    bodies = Bodies({"1": "d", "2": "d"}, {"10": "d", "11": "d"})
    sources = [Candidate("1", "a", 5), Candidate("2", "a", 5)]
    targets = [Candidate("10", "a", 5), Candidate("11", "a", 5)]
    assert sorted(match(sources, targets, bodies).values()) == ["10", "11"]


def test_alterations_are_named() -> None:
    exact = (100, WHEN, "h")
    assert alterations(exact, exact) == ((), "")
    assert alterations(exact, (102, WHEN, "h"), False)[0] == (LINE_END_ADDED,)
    assert alterations(exact, (102, WHEN, "h"))[0] == (LINE_END_ADDED,)
    assert alterations(exact, (102, WHEN, "h"), True)[0] == ("size changed by +2 bytes",)
    assert alterations(exact, (107, WHEN, "h"), True)[0] == ("size changed by +7 bytes",)
    assert alterations(exact, (90, WHEN, "h"))[0] == ("size changed by -10 bytes",)
    kinds, detail = alterations(exact, (100, WHEN + timedelta(days=1), "other"))
    assert kinds == (DATE_REPLACED, HEADERS_REWRITTEN)
    assert "internal date 2024-05-06T07:08:09+00:00 -> 2024-05-07T07:08:09+00:00" in detail
