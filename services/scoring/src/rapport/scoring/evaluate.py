"""How well the churn risk predicts who stops buying, on CDNOW; and populations drawn from
the models for tests and timing. Evaluation only: nothing here runs in the service.

Calibrate on purchases to ``calibration_end``, read every customer's risk at that moment,
and compare with who made no purchase in the ``holdout_weeks`` after (the published
BG/NBD setting: 1997-09-30 and 39 weeks). AUC is by the rank (Mann-Whitney) formula with
ties at half weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from rapport.scoring.fitting import ClvFit, Histories, fit_clv
from rapport.shared.purchases import PurchaseHistory, day_before, purchases_between
from rapport.shared.scores.bgnbd import (
    BgNbdParams,
    GammaGammaParams,
    expected_purchases,
    p_alive,
    p_no_purchase,
)
from rapport.shared.scores.churn import ChurnSignals, churn_risk


def load_cdnow(path: Path | str) -> dict[str, PurchaseHistory]:
    """CDNOW rows (master id, sample id, YYYYMMDD, CDs, dollars) as purchase histories:
    each row an order at noon UTC of its date."""
    histories: dict[str, PurchaseHistory] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            customer, _, ymd, _, dollars = line.split()
            at = datetime.strptime(ymd, "%Y%m%d").replace(hour=12, tzinfo=UTC)
            value = float(dollars)
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: not a CDNOW row ({exc})") from None
        histories.setdefault(customer, PurchaseHistory()).add(at, value)
    return histories


def end_of(day: date) -> datetime:
    """The moment a summary "to ``day`` inclusive" is taken at."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positives and negatives")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    mean_predicted: float | None
    observed_rate: float | None
    count: int


def reliability(predicted: np.ndarray, outcome: np.ndarray, bins: int = 10,
                ) -> list[ReliabilityBin]:
    """Equal-width bins of the prediction: its mean against the observed rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(predicted, edges[1:-1]), 0, bins - 1)
    out = []
    for i in range(bins):
        sel = index == i
        n = int(sel.sum())
        out.append(ReliabilityBin(i / bins, (i + 1) / bins,
                                  float(predicted[sel].mean()) if n else None,
                                  float(outcome[sel].mean()) if n else None, n))
    return out


@dataclass(frozen=True)
class ChurnEvaluation:
    fit: ClvFit
    customers: int
    churned: int  # no purchase in the holdout
    auc_churn_risk: float
    auc_minus_expected_purchases: float
    auc_one_minus_p_alive: float
    brier: float
    reliability: list[ReliabilityBin]


def evaluate_churn_cdnow(path: Path | str, calibration_end: date = date(1997, 9, 30),
                         holdout_weeks: int = 39) -> ChurnEvaluation:
    histories = list(load_cdnow(path).values())
    at = end_of(calibration_end)
    summaries = [h.summary(at) for h in histories]
    kept = [(h, s) for h, s in zip(histories, summaries, strict=True) if s is not None]
    fit = fit_clv(Histories.from_summaries(s for _, s in kept))
    last_day = day_before(at)
    holdout_end = last_day + 7 * holdout_weeks
    risk, expected, alive, churned = [], [], [], []
    for history, s in kept:
        args = (s.frequency, s.recency_weeks, s.age_weeks)
        risk.append(churn_risk(p_no_purchase(*args, holdout_weeks, fit.bgnbd),
                               ChurnSignals(), horizon_days=7 * holdout_weeks)[0])
        expected.append(expected_purchases(*args, holdout_weeks, fit.bgnbd))
        alive.append(p_alive(*args, fit.bgnbd))
        churned.append(purchases_between(history, last_day, holdout_end) == 0)
    risk_a, y = np.array(risk), np.array(churned, dtype=bool)
    return ChurnEvaluation(
        fit=fit, customers=len(kept), churned=int(y.sum()),
        auc_churn_risk=auc(risk_a, y),
        auc_minus_expected_purchases=auc(-np.array(expected), y),
        auc_one_minus_p_alive=auc(1 - np.array(alive), y),
        brier=float(np.mean((risk_a - y) ** 2)),
        reliability=reliability(risk_a, y.astype(float)))


def synthetic_histories(bgnbd: BgNbdParams, gamma_gamma: GammaGammaParams, n: int,
                        seed: int = 0, ages_weeks: tuple[float, float] = (27.0, 39.0),
                        whole_days: bool = False) -> Histories:
    """``n`` customers drawn from BG/NBD (and Gamma-Gamma for spend), first purchases
    spread so that ages are uniform in ``ages_weeks``.

    Given K Poisson purchases in (0, T], their times are uniform order statistics, and a
    customer who dropped out after purchase N < K made the first N: so x = min(K, N) and
    t_x = T * Beta(x, K - x + 1). ``whole_days`` rounds times down to days as the service's
    summaries do (then some customers share rows, as real ones do)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, n)
    drop = rng.beta(bgnbd.a, bgnbd.b, n)
    big_t = rng.uniform(*ages_weeks, n)
    if whole_days:
        big_t = np.floor(big_t * 7) / 7
    k = rng.poisson(lam * big_t)
    x = np.minimum(k, rng.geometric(drop))
    t_x = np.zeros(n)
    bought = x > 0
    t_x[bought] = big_t[bought] * rng.beta(x[bought], k[bought] - x[bought] + 1)
    if whole_days:
        t_x = np.floor(t_x * 7) / 7
    nu = rng.gamma(gamma_gamma.q, 1.0 / gamma_gamma.gamma, n)
    m = np.zeros(n)
    m[bought] = rng.gamma(gamma_gamma.p * x[bought], 1.0 / (x[bought] * nu[bought]))
    return Histories(x.astype(float), t_x, big_t, m)


def report(evaluation: ChurnEvaluation) -> list[object]:
    """``rich`` tables of an evaluation, to print."""
    from rich.table import Table

    fit = evaluation.fit
    params = Table(title=f"Fit on {fit.customers:,} customers "
                         f"({fit.repeat_buyers:,} repeat buyers)")
    for col in ("model", "parameters", "log-likelihood", "iterations"):
        params.add_column(col)
    for name, p, key in (("BG/NBD", fit.bgnbd, "bgnbd"),
                         ("Gamma-Gamma", fit.gamma_gamma, "gamma_gamma")):
        d = fit.diagnostics[key]
        params.add_row(name, ", ".join(f"{k}={v:.4f}" for k, v in vars(p).items()),
                       f"{d['log_likelihood']:.2f}", str(d["iterations"]))
    scores = Table(title=f"Who made no purchase in the holdout "
                         f"({evaluation.churned:,} of {evaluation.customers:,})")
    scores.add_column("measure")
    scores.add_column("value", justify="right")
    for name, value in (("ROC AUC, churn risk", evaluation.auc_churn_risk),
                        ("ROC AUC, -expected purchases", evaluation.auc_minus_expected_purchases),
                        ("ROC AUC, 1 - P(alive)", evaluation.auc_one_minus_p_alive),
                        ("Brier score, churn risk", evaluation.brier)):
        scores.add_row(name, f"{value:.4f}")
    bins = Table(title="Reliability of the churn risk")
    for col in ("predicted", "mean predicted", "observed", "customers"):
        bins.add_column(col, justify="right")
    for b in evaluation.reliability:
        bins.add_row(f"{b.low:.1f}-{b.high:.1f}",
                     "-" if b.mean_predicted is None else f"{b.mean_predicted:.3f}",
                     "-" if b.observed_rate is None else f"{b.observed_rate:.3f}",
                     f"{b.count:,}")
    return [params, scores, bins]
