"""The public equivalence harness.

Check your own layer against a reference the way customlayers checks its
own::

    from customlayers.testing import assert_equivalent
    report = assert_equivalent(MyDense(8), keras.layers.Dense(8), x,
                               mode="compiled")
    print(report.bit_exact)

Or declare a pair once and get every generic property for it::

    from customlayers.testing import LayerCase, properties
    CASE = LayerCase(name="MyDense", custom=MyDense,
                     reference=keras.layers.Dense, ...)
    properties.equivalence_property(CASE, "float32", "graph")()

Modules, by role:

- :mod:`~customlayers.testing.equivalence`: ``assert_equivalent``;
- :mod:`~customlayers.testing.backends`: forward and gradients per backend;
- :mod:`~customlayers.testing.numerics`: comparisons, ULP, failure text;
- :mod:`~customlayers.testing.tolerances`: the per-dtype tolerance table;
- :mod:`~customlayers.testing.strategies`: Hypothesis shapes, values, args;
- :mod:`~customlayers.testing.cases`: the declared layer pairs;
- :mod:`~customlayers.testing.properties`: the generic properties;
- :mod:`~customlayers.testing.profiles`: the ``ci``/``dev``/``thorough``
  Hypothesis profiles.
"""

from customlayers.testing.cases import CASES, KnownDifference, LayerCase
from customlayers.testing.equivalence import (EquivalenceReport,
                                              assert_equivalent, build_pair)
from customlayers.testing.numerics import compare_arrays, ulp_distance
from customlayers.testing.tolerances import TOLERANCES, Tolerance

__all__ = [
    "CASES", "EquivalenceReport", "KnownDifference", "LayerCase",
    "TOLERANCES", "Tolerance", "assert_equivalent", "build_pair",
    "compare_arrays", "ulp_distance",
]
