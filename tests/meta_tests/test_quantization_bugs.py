"""Meta-tests: the quantized-equivalence property catches planted bugs.

Each planted bug (``broken_quantized.py``) replaces customlayers.Dense in
the *same* Hypothesis property that the real layer passes in
tests/property/test_dense_lora_quantization.py. The property must fail
with an AssertionError and a counterexample; run with ``-rP`` to see it.
"""

import dataclasses

import pytest

from customlayers import _keras

if _keras.KERAS_MAJOR < 3:  # pragma: no cover - Keras 2 tox envs
    pytest.skip(f"LoRA and quantization need Keras 3; this is Keras "
                f"{_keras.KERAS_VERSION}", allow_module_level=True)
if _keras.BACKEND != "tensorflow":  # pragma: no cover
    pytest.skip(f"the quantized-equivalence property is TensorFlow only; "
                f"this run uses {_keras.BACKEND}", allow_module_level=True)

from tests.meta_tests import broken_quantized as bq  # noqa: E402
from tests.property.test_dense_lora_quantization import \
    make_property  # noqa: E402


@dataclasses.dataclass(frozen=True)
class PlantedBug:
    name: str
    layer: type
    family: str
    execution: str

    def __str__(self):
        return self.name


BUGS = [
    PlantedBug("int8 kernel rounded with floor", bq.FloorRoundingDense,
               "int8", "eager"),
    PlantedBug("int8 scale per tensor, not per channel",
               bq.PerTensorScaleDense, "int8", "compiled"),
    PlantedBug("int8 kernel not clipped to the value range",
               bq.UnclippedDense, "int8", "eager"),
    PlantedBug("LoRA scaled by rank / alpha", bq.InvertedLoraScaleDense,
               "lora", "eager"),
    PlantedBug("LoRA scaled by rank / alpha (on an int8 kernel, XLA)",
               bq.InvertedLoraScaleDense, "int8", "compiled"),
]


@pytest.mark.parametrize("bug", BUGS, ids=str)
def test_planted_quantization_bug_is_caught(bug):
    # More examples than the plain run: the unclipped bug needs a config
    # with an asymmetric weight range, and the LoRA bugs need LoRA with
    # alpha != rank, which a few of the drawn examples have.
    prop = make_property(bug.family, bug.execution, custom=bug.layer,
                         max_examples=40)
    with pytest.raises((AssertionError, ExceptionGroup)) as info:
        prop()
    if isinstance(info.value, ExceptionGroup):
        _, rest = info.value.split(AssertionError)
        assert rest is None, f"not an AssertionError: {rest!r}"
    notes = "\n".join(getattr(info.value, "__notes__", []))
    for exc in getattr(info.value, "exceptions", ()):
        notes += "\n".join(getattr(exc, "__notes__", []))
    assert "Falsifying example" in notes or "Failing test case" in notes \
        or "Draw 1" in notes, f"no counterexample was reported: {notes!r}"
    print(f"\nplanted bug caught: {bug.name}\n{info.value}\n{notes}")


def test_every_planted_bug_is_a_real_change():
    from customlayers import Dense
    for bug in BUGS:
        assert issubclass(bug.layer, Dense) and bug.layer is not Dense
        own = {k for cls in bug.layer.__mro__[:-1] if cls is not Dense
               and issubclass(cls, Dense) for k in vars(cls)} - {
            "__module__", "__doc__", "__qualname__"}
        assert own, f"{bug.layer.__name__} changes nothing"
