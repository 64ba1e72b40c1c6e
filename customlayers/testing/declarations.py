"""What a user declares about a layer pair: :class:`LayerCase`,
:class:`ErrorInput`, :class:`KnownDifference` and :class:`RandomSpec`.

A declaration is data, in the spirit of PyTorch's ``ModuleInfo``: the
generic properties (:mod:`customlayers.testing.properties`), the one-call
:func:`~customlayers.testing.run_equivalence_test`, the pytest plugin and
``customlayers verify --case`` all read the same object. Every field takes
plain values *or* Hypothesis strategies, so a first declaration is a few
lines::

    CASE = LayerCase(
        name="MyLayerNorm",
        custom=MyLayerNorm,
        reference=keras.layers.LayerNormalization,
        init_kwargs={"epsilon": st.sampled_from([1e-3, 1e-5]),
                     "center": st.booleans()},
        input_shape=(8, 16),
        input_range=(-100.0, 100.0),
    )

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

from hypothesis import strategies as st

from customlayers.testing.differences import (  # noqa: F401
    CHECK_NAMES, RELAXATIONS, ErrorInput, KnownDifference, check_matches)
from customlayers.testing.random_spec import RandomSpec
from customlayers.testing.tolerances import Tolerance, tolerance_for


def _labelled_draw(data, value, label):
    """``value`` itself, or a draw from it when it is a strategy."""
    if isinstance(value, st.SearchStrategy):
        return data.draw(value, label=label)
    return value


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """One (custom, reference) layer pair under test, declared once.

    Attributes:
        name: Short name for test ids and reports.
        custom: The layer under test: a class or a factory taking the
            constructor arguments (and ``dtype=``).
        reference: The reference, called with the same arguments.
        init_kwargs: Constructor arguments: a dict whose values are plain
            values or Hypothesis strategies, a strategy of dicts, or a
            function ``f(data) -> dict`` that draws them (labelled).
        input_shape: A shape tuple, a strategy of shapes, or a function
            ``f(data, kwargs) -> shape``. Default: ranks 2-5, at most 3072
            elements.
        input_data: A fixed input array, or a strategy of arrays; replaces
            the drawn input (``input_shape`` is then ignored).
        input_range: ``(low, high)``: drawn inputs (noise and special
            values) stay inside it. Non-finite values are drawn only when
            ``allow_nonfinite``.
        upstream_range: ``(low, high)`` for the drawn upstream gradient
            (default: unbounded, huge magnitudes included).
        input_elements: A Hypothesis strategy of floats for every element
            (drawn with ``hypothesis.extra.numpy``; slower than the default
            noise-plus-specials inputs).
        input_dtypes: The input dtypes the input-dtype property feeds under
            the default policy (default: bool, uint8, int8-int64 and the
            floats; narrow it for a layer that only claims some, and say
            why).
        allow_nonfinite: Draw NaN and +-inf into the inputs of the
            equivalence property, and run the non-finite upstream gradient
            property. ``False`` says non-finite values are not part of the
            layer's contract.
        kinks: ``f(kwargs) -> values`` where the function is not smooth: the
            inputs always hold each kink and its +-1-ULP neighbours, and the
            numeric gradient check keeps away from them.
        exact: ``True``, ``False`` or ``f(policy, mode) -> bool``: demand
            bit-exact results (opt-in; for pairs that run the same kernels).
            Otherwise the tolerance table applies, and the report still says
            "bit-exact" where results are.
        tolerances: Per-dtype overrides of the tolerance table
            (``{"float16": Tolerance(...)}``).
        check_tolerances: Per-check overrides, by ``fnmatch`` pattern
            (``{"numeric gradient": Tolerance(...), "saving/*": ...}``); a
            value may itself be a per-dtype dict.
        known_differences: :class:`KnownDifference` declarations.
        error_inputs: :class:`ErrorInput` declarations. None: the
            error-input property reports "n/a".
        weight_map: ``f(custom_weights) -> reference_weights`` when their
            order or layout differ (a linear rearrangement).
        smooth_kwargs: ``f(kwargs) -> kwargs`` made smooth for the numeric
            gradient check (e.g. no ``relu`` activation, no regularizers).
        numeric_gradient: Run the float64 central-difference check.
        config_ignore_keys: Keys of the reference's config that the custom
            layer does not have (say why in a comment).
        save_formats: Formats for the save/load round trip.
        skip_properties: Property kinds not run for this pair, each with its
            reason (a string, or ``f() -> reason or None`` to decide at run
            time, e.g. per backend; ``f(mode, training)`` -- any of
            ``policy``, ``mode``, ``training``, by name -- to skip some
            items of the kind only); reports print the reason.
        policies: Dtype policies the battery sweeps for this pair.
        modes: Execution modes the battery runs.
        example_kwargs: Plain constructor arguments for one reference layer
            (to ask which save formats apply); default: the first draw.
        random: A :class:`RandomSpec` for a layer that draws random masks
            (dropout-like): the battery then runs the ``randomness``
            property in every policy and mode. ``None`` (default): the
            layer is deterministic.
        input_ids: The input is integer ids, not floats: ``(low, high)``
            or ``f(kwargs) -> (low, high)``, ids drawn in ``[low, high)``
            (high exclusive; e.g. ``lambda kw: (0, kw["input_dim"])``).
            Every drawn input holds ``low``, ``high - 1`` and ``0`` (when
            in range); dtypes from ``id_dtypes`` under every policy. There
            is no input gradient (reported as ``n/a``); weight gradients
            are compared; the numeric gradient perturbs the weights only;
            second order and forward mode differentiate the weights only
            (Hessian-vector products along the weights, ``jvp[weights]``
            along a direction in the weights), their rows along the input
            (``hvp[input]``, ``hvp_fwd[input]``, ``hessian[input]``,
            ``jvp``, ``jacobian[input]``) reported as ``n/a``.
        id_dtypes: The integer dtypes drawn for ``input_ids`` inputs.
        masks: Run the ``mask`` property, in every mode: ``compute_mask``
            and the mask on the output equal the reference's, and (eager)
            the mask a model propagates from the layer.
        input_mask: The layer's ``call`` takes ``mask=``: the ``mask``
            property also draws a boolean mask (shaped like the input, or
            ``f(x_shape) -> mask_shape``; ``f(x_shape, kwargs=None)`` is
            also given the constructor arguments before the call and may
            return ``None``: no mask for that input) and compares the outputs of ``layer(x, mask=mask)``,
            ``compute_mask(x, mask)`` and, in training mode, the updated
            non-trainable variables.
        training: Values of the ``training`` call argument the
            equivalence, non-finite upstream, second-order, forward-mode
            and mask properties run, one item each (ids end ``-training``
            / ``-inference``); ``()``: not passed. Other properties call
            the layer without it.
        state_steps: Training-mode calls (new batch each) the ``state``
            property makes, comparing the output and every non-trainable
            variable after each; ``0``: no ``state`` property.
        positive_weights: Names of weights drawn ``|normal| * 0.5`` (e.g.
            ``("moving_variance",)``, which the layer takes roots of).
        reuse_layers: Let equivalence examples with the same constructor
            arguments, policy and input shape reuse one built pair,
            restored to its just-built variables each time
            (:mod:`customlayers.testing.pairs`); ``False`` for a layer
            whose Python state changes between calls beyond its variables.
    """

    name: str
    custom: Callable
    reference: Callable
    init_kwargs: Any = dataclasses.field(default_factory=dict)
    input_shape: Any = None
    input_data: Any = None
    input_range: Optional[tuple] = None
    upstream_range: Optional[tuple] = None
    input_elements: Any = None
    input_dtypes: Optional[tuple] = None
    allow_nonfinite: bool = True
    kinks: Callable = lambda kwargs: ()
    exact: Any = False
    tolerances: Mapping[str, Tolerance] = dataclasses.field(
        default_factory=dict)
    check_tolerances: Mapping[str, Any] = dataclasses.field(
        default_factory=dict)
    known_differences: tuple = ()
    error_inputs: tuple = ()
    weight_map: Optional[Callable] = None
    smooth_kwargs: Callable = lambda kwargs: kwargs
    numeric_gradient: bool = True
    config_ignore_keys: frozenset = frozenset()
    save_formats: tuple = ("keras", "h5", "savedmodel")
    skip_properties: Mapping[str, Any] = dataclasses.field(
        default_factory=dict)
    policies: Optional[tuple] = None
    modes: Optional[tuple] = None
    example_kwargs: Optional[Mapping] = None
    random: Optional[RandomSpec] = None
    input_ids: Any = None
    id_dtypes: tuple = ("int32", "int64")
    masks: bool = False
    input_mask: Any = False
    training: tuple = ()
    state_steps: int = 0
    positive_weights: tuple = ()
    reuse_layers: bool = True

    def __post_init__(self):
        if self.random is not None and not isinstance(self.random,
                                                      RandomSpec):
            raise TypeError(f"LayerCase({self.name!r}).random is "
                            f"{self.random!r}; expected a RandomSpec")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"LayerCase needs a name; got {self.name!r}")
        for field in ("custom", "reference"):
            value = getattr(self, field)
            if not callable(value) or _is_layer_instance(value):
                raise TypeError(
                    f"LayerCase({self.name!r}).{field} must be a layer class "
                    f"or a factory f(**kwargs) -> layer, not "
                    f"{type(value).__name__} {value!r}: every example builds "
                    "fresh layers (for a single instance use "
                    "customlayers.testing.assert_equivalent)")
        for field in ("input_range", "upstream_range"):
            bounds = getattr(self, field)
            if bounds is not None and not (
                    len(bounds) == 2 and bounds[0] < bounds[1]):
                raise ValueError(f"LayerCase({self.name!r}): {field} "
                                 f"{bounds} needs (low, high), low < high")
        named = []
        for d in self.known_differences:
            if not isinstance(d, KnownDifference):
                raise TypeError(f"LayerCase({self.name!r}).known_differences"
                                f" holds {d!r}; expected KnownDifference")
            named.append(d if d.name else dataclasses.replace(
                d, name=self.name))
        object.__setattr__(self, "known_differences", tuple(named))
        for e in self.error_inputs:
            if not isinstance(e, ErrorInput):
                raise TypeError(f"LayerCase({self.name!r}).error_inputs "
                                f"holds {e!r}; expected ErrorInput")
        if isinstance(self.training, bool) or any(
                not isinstance(t, bool) for t in self.training) or \
                isinstance(self.positive_weights, str):
            raise TypeError(f"LayerCase({self.name!r}): training is a tuple "
                            "of bools, positive_weights a tuple of names; "
                            f"got {self.training!r}, "
                            f"{self.positive_weights!r}")
        for k, v in self.check_tolerances.items():
            if not isinstance(v, (Tolerance, Mapping)):
                raise TypeError(f"check_tolerances[{k!r}] = {v!r}; expected "
                                "a Tolerance or a dict dtype -> Tolerance")

    # -- drawing ------------------------------------------------------------

    def draw_kwargs(self, data) -> dict:
        """Constructor arguments for one example (labelled draws)."""
        spec = self.init_kwargs
        if isinstance(spec, st.SearchStrategy):
            return dict(data.draw(spec, label=f"{self.name} arguments"))
        if callable(spec):
            return dict(spec(data))
        return {k: _labelled_draw(data, v, f"{self.name} {k}")
                for k, v in dict(spec).items()}

    def draw_input_shape(self, data, kwargs) -> tuple:
        """The input shape for one example."""
        from customlayers.testing import strategies as cst
        spec = self.input_shape
        if spec is None:
            return cst.draw_shape(data, max_size=cst.MAX_INPUT_SIZE)
        if isinstance(spec, st.SearchStrategy):
            return tuple(data.draw(spec, label="input shape"))
        if callable(spec):
            return tuple(spec(data, kwargs))
        return tuple(spec)

    def plain_kwargs(self) -> dict:
        """One plain set of constructor arguments, without Hypothesis: the
        ``example_kwargs``, or the simplest value of every strategy."""
        if self.example_kwargs is not None:
            return dict(self.example_kwargs)
        return self.draw_kwargs(_SimplestData())

    def id_range(self, kwargs) -> Optional[tuple]:
        """``(low, high)`` of the ids for ``kwargs`` (``None``: the input
        is not ids)."""
        spec = self.input_ids
        if spec is None:
            return None
        low, high = spec(kwargs) if callable(spec) else spec
        if not int(low) < int(high):
            raise ValueError(f"LayerCase({self.name!r}).input_ids gives "
                             f"({low}, {high}); needs low < high")
        return int(low), int(high)

    # -- expectations ---------------------------------------------------------

    def is_exact(self, policy: str, mode: str) -> bool:
        return bool(self.exact(policy, mode) if callable(self.exact)
                    else self.exact)

    def tolerance(self, policy: str, check: str = "output") -> Tolerance:
        """The tolerance for ``check`` under ``policy``: a per-check
        override, else a per-dtype override, else the table."""
        from customlayers.testing.strategies import compute_dtype
        dtype = compute_dtype(policy)
        for pattern, tol in self.check_tolerances.items():
            if check_matches(check, pattern):
                if isinstance(tol, Tolerance):
                    return tol
                if dtype in tol:
                    return tol[dtype]
        return self.tolerances.get(dtype) or tolerance_for(dtype)

    def save_unsupported(self, fmt: str) -> Optional[str]:
        """Why a save/load round trip in ``fmt`` cannot apply to this pair
        on this Keras and backend (``None`` if it can)."""
        if fmt not in self.save_formats:
            return f"{self.name} declares save_formats={self.save_formats}"
        from customlayers.testing.saving import save_format_unsupported
        return save_format_unsupported(
            fmt, layer=self.reference(**self.plain_kwargs()))


class _SimplestData:
    """Stands in for ``st.data()``: each draw is the strategy's simplest
    value (``hypothesis.find`` with an always-true condition)."""

    def draw(self, strategy, label=None):
        from hypothesis import find
        return find(strategy, lambda _: True)


def _is_layer_instance(obj) -> bool:
    """A built layer object (not a class or a factory)."""
    return not isinstance(obj, type) and hasattr(obj, "get_config") and \
        hasattr(obj, "weights")
