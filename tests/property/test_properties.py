"""Every generic property, for each of customlayers' own layer pairs.

The same battery a user gets from ``layer_test_suite(CASE)``: one test per
property x dtype policy x mode (``TestDense::test_property[equivalence-
float32-eager]``), from :mod:`customlayers.testing.battery`, so that
``customlayers verify`` runs exactly these checks.
"""

from customlayers.testing import layer_test_suite
from customlayers.testing.cases import DENSE, RELU

TestDense = layer_test_suite(DENSE)
TestReLU = layer_test_suite(RELU)
