"""kill -9 at random moments on real processes (a scripted model, so it is fast), then resume:
nothing finished is lost or regenerated, nothing stale is left (benchmarks.kill_resume)."""

from benchmarks.kill_resume import run


def test_random_sigkills_lose_nothing():
    totals = run(trials=3, kills=2, seed=7)
    assert {k: totals[k] for k in ("lost", "regenerated", "stale", "incomplete")} == \
        {"lost": 0, "regenerated": 0, "stale": 0, "incomplete": 0}, totals
