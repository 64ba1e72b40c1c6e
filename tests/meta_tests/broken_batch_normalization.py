"""Deliberately broken variants of customlayers.BatchNormalization: each
must be caught by the generic properties
(``test_batch_normalization_bugs.py``)."""

from customlayers import BatchNormalization
from customlayers._keras import keras, ops


class SwappedMomentumBN(BatchNormalization):
    """``moving * (1 - momentum) + batch * momentum``: the moving averages
    follow the batch instead of remembering (outputs and gradients are
    right in both modes: only the ``state`` property sees it)."""

    def _update_moving_statistics(self, moving_mean, moving_variance, mean,
                                  variance):
        m = 1.0 - self.momentum
        self.moving_mean.assign(moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(moving_variance * m
                                    + variance * (1.0 - m))


class FrozenStateBN(BatchNormalization):
    """Never updates the moving statistics (only the ``state`` property
    sees it)."""

    def _update_moving_statistics(self, moving_mean, moving_variance, mean,
                                  variance):
        return None


class UnbiasedVarianceBN(BatchNormalization):
    """Divides the squared deviations by n - 1 (Bessel's correction), where
    batch normalization uses the biased variance."""

    def _moments(self, x, mask):
        mean, variance = super()._moments(x, mask)
        n = 1
        for a in self._reduction_axes:
            n *= x.shape[a]
        return mean, variance * (n / max(n - 1, 1))


class MovingStatisticsInTrainingBN(BatchNormalization):
    """Normalizes with the moving statistics in training mode too (they are
    still updated)."""

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable:
            x = ops.cast(inputs, keras.backend.result_type(
                inputs.dtype, "float32"))
            mean, variance = self._moments(x, mask)
            self._update_moving_statistics(
                ops.cast(self.moving_mean, x.dtype),
                ops.cast(self.moving_variance, x.dtype), mean, variance)
        # Then normalize as in inference mode (the updated moving
        # statistics), not with the batch's.
        return super().call(inputs, training=False, mask=mask)


class EpsilonOutsideSqrtBN(BatchNormalization):
    """``1 / (sqrt(var) + eps)`` instead of ``1 / sqrt(var + eps)``."""

    def _inverse_std(self, variance):
        return 1.0 / (ops.sqrt(variance) + self.epsilon)
