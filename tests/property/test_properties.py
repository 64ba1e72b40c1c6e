"""Every generic property, for each of customlayers' own layer pairs.

The same battery a user gets from ``layer_test_suite(CASE)``: one test per
property x dtype policy x mode (``TestDense::test_property[equivalence-
float32-eager]``), from :mod:`customlayers.testing.battery`, so that
``customlayers verify`` runs exactly these checks.
"""

from customlayers.testing import layer_test_suite
from customlayers.testing.cases import DENSE, RELU
from customlayers.testing.cases_batch_normalization import BATCH_NORMALIZATION
from customlayers.testing.cases_dropout import DROPOUT
from customlayers.testing.cases_embedding import EMBEDDING
from customlayers.testing.cases_normalization import LAYER_NORMALIZATION

TestDense = layer_test_suite(DENSE)
TestReLU = layer_test_suite(RELU)
# Keras 3 only: customlayers.LayerNormalization refuses Keras 2.
if LAYER_NORMALIZATION is not None:
    TestLayerNormalization = layer_test_suite(LAYER_NORMALIZATION)
# Keras 3 only: customlayers.Dropout refuses Keras 2.
if DROPOUT is not None:
    TestDropout = layer_test_suite(DROPOUT)
# Keras 3 only: customlayers.Embedding refuses Keras 2.
if EMBEDDING is not None:
    TestEmbedding = layer_test_suite(EMBEDDING)
# Keras 3 only: customlayers.BatchNormalization refuses Keras 2.
if BATCH_NORMALIZATION is not None:
    TestBatchNormalization = layer_test_suite(BATCH_NORMALIZATION)
