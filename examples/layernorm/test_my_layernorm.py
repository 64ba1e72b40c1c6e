"""The whole customlayers battery for MyLayerNorm, as pytest tests:
``pytest examples/layernorm`` (add ``--cl-modes eager`` to narrow)."""

from customlayers.testing import layer_test_suite

from my_layernorm import CASE

TestMyLayerNorm = layer_test_suite(CASE)
