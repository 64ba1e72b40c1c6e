"""The public equivalence harness: prove that a layer computes what a
reference does, outputs and gradients, in every dtype policy and mode.

One call, plain values::

    from customlayers.testing import run_equivalence_test
    run_equivalence_test(MyLayerNorm, keras.layers.LayerNormalization,
                         init_kwargs={"epsilon": 1e-3}, input_shape=(4, 16))

One declaration, the whole battery with random examples::

    from customlayers.testing import LayerCase, layer_test_suite
    CASE = LayerCase(name="MyLayerNorm", custom=MyLayerNorm,
                     reference=keras.layers.LayerNormalization,
                     init_kwargs={"epsilon": st.sampled_from([1e-3, 1e-5])},
                     input_shape=(8, 16), input_range=(-100.0, 100.0))
    TestMyLayerNorm = layer_test_suite(CASE)          # pytest
    # customlayers verify --case my_module:CASE       # CLI
    # customlayers.verify.run(cases=[CASE])           # Python

Modules, by role:

- :mod:`~customlayers.testing.declarations`: ``LayerCase``, ``ErrorInput``,
  ``KnownDifference``;
- :mod:`~customlayers.testing.layer_test`: ``run_equivalence_test``;
- :mod:`~customlayers.testing.suite`: ``layer_test_suite`` (pytest);
- :mod:`~customlayers.testing.battery`: which properties run, and running one;
- :mod:`~customlayers.testing.properties`: the generic properties;
- :mod:`~customlayers.testing.equivalence`: ``assert_equivalent``;
- :mod:`~customlayers.testing.expectations`: tolerances and known
  differences applied to one comparison;
- :mod:`~customlayers.testing.numerics`: comparisons, ULP, failure text;
- :mod:`~customlayers.testing.tolerances`: the per-dtype tolerance table;
- :mod:`~customlayers.testing.strategies`: Hypothesis shapes, values, args;
- :mod:`~customlayers.testing.backends`: forward and gradients per backend;
- :mod:`~customlayers.testing.report`: rows, verdicts, JSON and JUnit;
- :mod:`~customlayers.testing.artifacts`: where failure ``.npz`` files go;
- :mod:`~customlayers.testing.profiles`: the ``ci``/``dev``/``thorough``
  Hypothesis profiles;
- :mod:`~customlayers.testing.cases`: customlayers' own declared pairs.
"""

from customlayers.testing.cases import CASES
from customlayers.testing.declarations import (ErrorInput, KnownDifference,
                                               LayerCase)
from customlayers.testing.equivalence import (EquivalenceReport,
                                              assert_equivalent, build_pair)
from customlayers.testing.layer_test import run_equivalence_test
from customlayers.testing.numerics import compare_arrays, ulp_distance
from customlayers.testing.random_spec import RandomSpec
from customlayers.testing.suite import layer_test_suite
from customlayers.testing.tolerances import TOLERANCES, Tolerance

__all__ = [
    "CASES", "EquivalenceReport", "ErrorInput", "KnownDifference",
    "LayerCase", "RandomSpec", "TOLERANCES", "Tolerance", "assert_equivalent",
    "build_pair", "compare_arrays", "layer_test_suite",
    "run_equivalence_test", "ulp_distance",
]
