"""The generic properties, for any declared
:class:`~customlayers.testing.LayerCase`.

Each ``*_property(case, ...)`` returns a Hypothesis test function (already
decorated with ``@given`` and ``@settings``) that raises on the first
falsifying example, after shrinking it. Each draws one example (labelled,
so a failure reads like a sentence) and hands it to a plain ``check_*``
function, which :func:`~customlayers.testing.run_equivalence_test` also
calls with fixed values. Nothing here knows a particular layer: what is
special about a pair lives in its declaration.

Example counts scale with the active Hypothesis profile: a property runs
``WEIGHTS[kind] * max_examples`` examples (at least 1).
"""

from customlayers.testing.properties._base import (  # noqa: F401
    VALUE_SETS, WEIGHTS, draw_input, guaranteed_values, n_examples,
    value_sets)
from customlayers.testing.properties.equivalence import (  # noqa: F401
    check_equivalence, equivalence_property, nonfinite_upstream_property)
from customlayers.testing.properties.derivatives import (  # noqa: F401
    JACOBIAN_MAX, check_forward_mode, check_second_order,
    forward_mode_property, second_order_property)
from customlayers.testing.properties.gradients import (  # noqa: F401
    KINK_MARGIN, NUMERIC_STEP, NUMERIC_TOLERANCE, check_numeric_gradient,
    numeric_gradient_property, numeric_gradient_unavailable,
    numeric_tolerance)
from customlayers.testing.properties.inputs import (  # noqa: F401
    INPUT_DTYPES, check_error_input, check_input_dtype,
    error_inputs_property, input_dtypes_property, names_value)
from customlayers.testing.properties.randomness import (  # noqa: F401
    check_randomness, randomness_property)
from customlayers.testing.properties.masks import (  # noqa: F401
    MaskEcho, check_mask, mask_property)
from customlayers.testing.properties.state import (  # noqa: F401
    check_state, state_property, training_step)
from customlayers.testing.properties.structure import (  # noqa: F401
    check_config, check_lazy_build, check_saving, config_property,
    lazy_build_property, missing_parameters, rank_probes, saving_property)
