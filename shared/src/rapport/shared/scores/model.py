"""The models in use, as the scoring service stores them and every reader loads them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from .bgnbd import BgNbdParams, GammaGammaParams

PRIOR_VERSION = "clv-prior"


class BgNbd(BaseModel):
    r: float
    alpha: float
    a: float
    b: float

    def params(self) -> BgNbdParams:
        return BgNbdParams(self.r, self.alpha, self.a, self.b)


class GammaGamma(BaseModel):
    p: float
    q: float
    gamma: float

    def params(self) -> GammaGammaParams:
        return GammaGammaParams(self.p, self.q, self.gamma)


class ClvModel(BaseModel):
    """A fitted (or, before the first fit, the published CDNOW) BG/NBD + Gamma-Gamma."""

    version: str
    fitted_at: datetime | None = None
    as_of: datetime | None = None
    customers: int = 0
    repeat_buyers: int = 0
    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    diagnostics: dict[str, Any] = Field(default_factory=dict)


PRIOR = ClvModel(
    version=PRIOR_VERSION,
    bgnbd=BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426),
    gamma_gamma=GammaGamma(p=6.25, q=3.74, gamma=15.44),
    diagnostics={"note": "published CDNOW fits (Fader, Hardie & Lee 2005), used until the "
                         "first fit on this population"})
