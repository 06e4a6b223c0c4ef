"""The blinded trial order of a real-robot evaluation session."""

from collections import Counter

from runner.episodes.trials import blinded_order


def test_every_policy_meets_every_episode_once_in_blocks_of_one_episode():
    order = blinded_order(3, 5, seed=11)
    assert [t.number for t in order] == list(range(1, 16))
    assert Counter((t.episode, t.policy) for t in order) == {(e, p): 1 for e in range(5) for p in range(3)}
    assert [t.episode for t in order] == [e for e in range(5) for _ in range(3)]  # one setup, all policies


def test_the_order_is_random_but_reproducible_from_its_seed():
    assert blinded_order(2, 20, seed=1) == blinded_order(2, 20, seed=1)
    orders = {tuple(t.policy for t in blinded_order(2, 20, seed=s)) for s in range(5)}
    assert len(orders) == 5
    first_slots = [blinded_order(2, 20, seed=1)[i].policy for i in range(0, 40, 2)]
    assert 0 < sum(first_slots) < 20  # neither policy always goes first within its block
