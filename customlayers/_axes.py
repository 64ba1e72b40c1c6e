"""The axis check the normalization layers share (BatchNormalization's
one axis, LayerNormalization's axis or list of axes). No Keras import."""


def check_axes(axis, ndims, layer_name):
    """Refuse, naming the layer, an ``axis`` (an int or a list of ints)
    with an entry outside ``[-ndims, ndims)``."""
    for a in axis if isinstance(axis, list) else [axis]:
        if not -ndims <= a < ndims:
            raise ValueError(
                f"Axis {a} is out of bounds for an input of rank {ndims} "
                f"in layer {layer_name!r}. Received: axis={axis}")
