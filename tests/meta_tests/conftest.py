"""Meta-test set-up.

Shrinking is bounded per test with
:func:`customlayers.testing.battery.shrink_budget` (10 s): the meta-tests
only need *a* small counterexample to print.
"""
