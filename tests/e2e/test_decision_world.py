"""Next-best-action in the simulated world (issue 12), through the HTTP APIs only.

Asserts only what holds for any sane decision service; the figures (and how the
learned policy compares with the best static one and the oracle) are printed:
``pytest -s`` shows them, with the off-policy estimates against the truth. Whether the
learned policy beats the static one is not
asserted: at this size it is noise (``rapport eval-decisions`` measures it)."""

import math

from rich.console import Console

from rapport.next_action.simworld import judging, run, world


async def test_decisions_in_the_simulated_world(system):
    urls = {name: system.url(name) for name in ("ingest", "profile", "next-action")}
    report = await run.run_world(urls, n_customers=300, decisions=1500, seed=12, limit=1)
    Console(width=120).print(report.table())
    Console(width=120).print(judging.table(report.judged))
    print(f"learned/static {report.learned_over_static:.2f} "
          f"(second half {report.second_half_over_static:.2f}); learned/oracle "
          f"{report.learned_over_oracle:.2f} (second half {report.second_half_over_oracle:.2f})")

    assert report.decision_status == {200: 1500}, report.decision_status
    assert not report.bad_actions, report.bad_actions[:5]
    shown = sum(report.shown.values())
    assert report.outcome_status == ({202: shown} if shown else {}), report.outcome_status
    assert set(report.shown) <= set(world.OFFER_BY_ID)
    figures = (report.learned, report.learned_second_half, report.learned_expected,
               report.static, report.static_second_half, report.oracle,
               report.oracle_second_half)
    assert all(math.isfinite(f) for f in figures), figures
    assert report.oracle >= report.static >= 0
    assert report.oracle_second_half >= report.static_second_half >= 0
    # The service's off-policy estimates, judged against the truth of the same decisions
    # (printed; their accuracy at this size is the statistics', shown by eval-decisions).
    assert len(report.judged) == 7
    for j in report.judged:
        assert j.decisions > 1000 and math.isfinite(j.truth)
        assert all(math.isfinite(e["value"]) for e in j.estimates.values())
