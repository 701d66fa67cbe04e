"""Price optimization: debiased elasticities, a demand network that is monotone in price by
construction, a constrained optimizer and a backtest against a simulator with known truth.

Example:
    >>> from shopml.data.market import simulate_market
    >>> from shopml.pricing import estimate_elasticity
    >>> m = simulate_market(n_items=10, n_stores=10, n_weeks=30, seed=0)
    >>> r = estimate_elasticity(m.panel, "iv", instrument="cost_shifter", fixed_effects=["item"])
    >>> -3.0 < r.estimate < -2.0
    True
"""

from shopml.pricing.backtest import run_backtest
from shopml.pricing.demand import NeuralDemand
from shopml.pricing.elasticity import ElasticityResult, estimate_elasticity
from shopml.pricing.loglinear import LogLinearDemand
from shopml.pricing.nets import MonotoneDemandNet
from shopml.pricing.optimize import Constraints, candidate_prices, optimize_group, optimize_price, violations
from shopml.pricing.panel import read_panel, run_panel_benchmark

__all__ = [
    "estimate_elasticity", "ElasticityResult", "NeuralDemand", "MonotoneDemandNet", "LogLinearDemand",
    "Constraints", "optimize_price", "optimize_group", "candidate_prices", "violations", "run_backtest",
    "read_panel", "run_panel_benchmark",
]
