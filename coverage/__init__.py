"""The analysis: coverage, gaps, equity, targets, location optimization and what-if edits.

Modules, one concern each::

    analysis    analyse(): the batch run as named stages (inputs, snap, route, measure, gaps,
                suggest, targets) and the stage functions themselves
    state       ResidentState / LayerState / CandidateSet: snapped and routed once, reused
    whatif      Study: add/move/remove a site, change speed or minutes, exactly as a batch run
    metrics     coverage rates, mean/P90 minutes, completeness; is_covered (THE definition)
    gaps        gap zones from the unserved street network
    equity      Gini (per 街道 and population-weighted), CV, worst/best area
    access2sfca Gaussian two-step floating catchment (loads, over-subscribed facilities)
    targets     planning targets: met or not, shortfall, fewest sites to meet them
    optimize    MCLP / LSCP / p-median / capacitated coverage (exact HiGHS, greedy+swap)
    hexgrid     H3 cells when no 街道 polygons are given
    result      StudyResult, the typed result every writer reads
    summary     summary.json, built in one function
    schema      the column lists of the result's tables

Public API (imported lazily, so ``import coverage.metrics`` stays light)::

    from coverage import AnalysisOptions, StudyInputs, analyse, Study, summary_dict
    result = analyse(net, StudyInputs(residents, {"canteen": canteens}, specs), title="上城区")
    summary_dict(result)["layers"]["canteen"]["coverage_rate"]
    study = Study.route(net, StudyInputs(residents, {"canteen": canteens}, specs))
    study, site_id = study.add_facility("canteen", lon=120.17, lat=30.25, name="新助餐点")
    study.metrics("canteen")          # the batch run's metrics rows for the edited set

``net`` comes from :func:`geo.load.load_network`, the layers from :mod:`layers.model`; the
README's "Library use" section runs this end to end on the demo district.  Note that this
package shares its import name with coverage.py: the project runs from its checkout and is
never installed into site-packages.
"""

from __future__ import annotations

from layers.lazy import lazy_exports

__all__ = [
    "AnalysisOptions",
    "CoverageProblem",
    "Study",
    "StudyInputs",
    "StudyResult",
    "analyse",
    "solve",
    "summary_dict",
]

_WHERE = {
    "AnalysisOptions": "coverage.analysis",
    "StudyInputs": "coverage.analysis",
    "analyse": "coverage.analysis",
    "Study": "coverage.whatif",
    "StudyResult": "coverage.result",
    "summary_dict": "coverage.summary",
    "CoverageProblem": "coverage.optimize",
    "solve": "coverage.optimize",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
