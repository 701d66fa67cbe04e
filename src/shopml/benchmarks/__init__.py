"""The benchmarks behind ``shopml benchmark ...``, as library functions.

Each module runs one benchmark (reads its data, fits and scores the models) and returns a
:class:`BenchmarkResult`: the rows and extras that ``shopml benchmark`` writes as JSON plus a
Markdown twin. Nothing here prints: progress goes to the ``shopml.benchmarks`` logger (INFO),
which the CLI shows.

==============  ==========================================  =================================
module          functions                                   command
==============  ==========================================  =================================
``recommend``   :func:`~.recommend.run_recommend`,          ``recommend``, ``recommend-memory``
                :func:`~.recommend.run_memory`
``sessions``    :func:`~.sessions.run_sessions`             ``sessions``
``customers``   :func:`~.customers.run_customers`           ``customers``
``intent``      :func:`~.intent.run_intent`                 ``intent``
``pricing``     :func:`~.pricing.run_pricing`,              ``pricing``, ``pricing-sim``
                :func:`~.pricing.run_pricing_sim`
``ingest``      :func:`~.ingest.run_ingest`                 ``ingest``
``fit``         :func:`~.fit.run_fit`                       ``fit``
==============  ==========================================  =================================

The modules are not imported here: each pulls in torch or polars only when it runs, and the
ingest benchmark's child processes import just their own module, so their peak RSS is theirs.

Example:
    >>> from shopml.benchmarks.pricing import run_pricing_sim       # doctest: +SKIP
    >>> res = run_pricing_sim(items=5, stores=4, weeks=20)          # doctest: +SKIP
    >>> sorted(res.rows[0])[:3]                                     # doctest: +SKIP
    ['elasticity', 'elasticity_error', 'item_mae']
"""

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb

__all__ = ["BenchmarkResult", "peak_rss_mb"]
