"""The offline comparison of learners runs, is reproducible, and no policy beats the
oracle on the same decisions."""

from rapport.next_action.simworld import learners
from rapport.shared import cli


def test_a_small_comparison_is_seeded_and_bounded_by_the_oracle():
    a = learners.run_seed(80, 600, 3)
    b = learners.run_seed(80, 600, 3)
    assert [(r.policy, r.profit, r.second_half) for r in a] == \
        [(r.policy, r.profit, r.second_half) for r in b]
    assert len(a) == len(learners.POLICIES)
    for r in a:
        assert r.profit <= r.oracle + 1e-12 and r.second_half <= r.oracle_second_half + 1e-12
        assert r.static <= r.oracle
    rows = learners.summary(a)
    assert set(rows) == {p.name for p in learners.POLICIES}


def test_the_cli_runs_it_small(capsys):
    assert cli.main(["eval-learners", "--customers", "40", "--decisions", "300",
                     "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "Thompson" in out and "oracle" in out and "hyperparameters" in out
