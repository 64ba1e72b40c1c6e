"""``layer_test_suite``: a declaration as a pytest test class.

::

    TestMyLayer = layer_test_suite(MY_CASE)

collects ``TestMyLayer::test_property[<property>-<policy>-<mode>]`` for every
item of the battery (:mod:`customlayers.testing.battery`). The class
parametrizes itself (its own ``pytest_generate_tests``); the
``customlayers`` pytest plugin, installed with the package, adds the
``--cl-*`` options, the examples and known-differences summary, and the
strict switch (see :mod:`customlayers_pytest`).
"""

from __future__ import annotations


def layer_test_suite(case, *, policies=None, modes=None, name=None) -> type:
    """A pytest test class running the whole battery for ``case``.

    Args:
        case: A :class:`~customlayers.testing.LayerCase`.
        policies: Dtype policies (default: the case's, else all six);
            ``--cl-policies`` overrides.
        modes: Execution modes (default: the case's, else all three);
            ``--cl-modes`` overrides.
        name: The class name (default ``Test<case name>``).
    """
    import customlayers_pytest

    class Suite:
        customlayers_case = case

        def pytest_generate_tests(self, metafunc):
            customlayers_pytest.generate_items(metafunc, case, policies,
                                               modes)

        def test_property(self, cl_item, request):
            customlayers_pytest.run_item_in_pytest(cl_item, request.config)

    Suite.__name__ = Suite.__qualname__ = name or f"Test{case.name}"
    Suite.__doc__ = f"The customlayers battery for {case.name}."
    return Suite
