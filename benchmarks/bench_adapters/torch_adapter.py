"""Role: PyTorch steps for the three impls (bare: ``torch.addmm(b, x, W)`` /
``torch.relu`` / ``torch.nn.functional.layer_norm`` / ``.batch_norm`` /
``keras.random.dropout`` (``torch.nn.functional.dropout`` under a seeded
generator) / ``torch.nn.functional.embedding``), eager or
``torch.compile``."""

from __future__ import annotations

import functools

import keras

from bench_adapters.common import (BN_EPSILON, BN_MOMENTUM, LEARNING_RATE,
                                   compute_dtype, integer_input)
from bench_matrix import DROPOUT_RATE, DROPOUT_SEED


class TorchAdapter:
    def __init__(self, torch_compile=False):
        import torch
        self.torch = torch
        self.torch_compile = torch_compile

    def sync(self, out):
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy, call_kwargs=None):
        torch = self.torch
        F = torch.nn.functional
        from keras import ops
        cd = compute_dtype(policy)
        ids = integer_input(x_np)
        x = ops.convert_to_tensor(x_np)
        if not ids:
            x = ops.cast(x, cd)
        g = ops.cast(ops.convert_to_tensor(g_np), cd)

        if impl == "bare":
            master = pass_ == "train"
            if layer_kind == "dense":
                wdt = "float32" if master else cd
                params = [ops.cast(ops.convert_to_tensor(w), wdt).detach()
                          .requires_grad_(True) for w in weights]
                tcd = x.dtype

                def fwd(x_):
                    W, b = params
                    return torch.addmm(b.to(tcd), x_, W.to(tcd))
            elif layer_kind == "layernorm":
                params = [ops.convert_to_tensor(w).detach().requires_grad_(True)
                          for w in weights]  # float32

                def fwd(x_):
                    gamma, beta = params
                    return torch.nn.functional.layer_norm(
                        x_.float(), gamma.shape, gamma, beta, 1e-3
                    ).to(x_.dtype)
            elif layer_kind.startswith("batchnorm"):
                params = [ops.convert_to_tensor(w).detach().requires_grad_(True)
                          for w in weights[:2]]  # float32
                moving = [ops.convert_to_tensor(w).detach().clone()
                          for w in weights[2:]]
                training = layer_kind == "batchnorm_training"

                def fwd(x_):
                    # torch's momentum is Keras's 1 - momentum (and its
                    # running variance is the unbiased one).
                    return F.batch_norm(
                        x_.float(), moving[0], moving[1], params[0],
                        params[1], training=training,
                        momentum=1.0 - BN_MOMENTUM, eps=BN_EPSILON
                    ).to(x_.dtype)
            elif layer_kind == "dropout":
                params = []
                seed = keras.random.SeedGenerator(DROPOUT_SEED)

                def fwd(x_):
                    return keras.random.dropout(x_, DROPOUT_RATE, seed=seed)
            elif layer_kind == "embedding":
                params = [ops.convert_to_tensor(weights[0]).detach()
                          .requires_grad_(True)]  # float32
                tcd = ops.cast(ops.zeros(()), cd).dtype

                def fwd(x_):
                    return F.embedding(x_, params[0]).to(tcd)
            else:
                params = []

                def fwd(x_):
                    return torch.relu(x_)
            lr = LEARNING_RATE

            def apply(grads):
                with torch.no_grad():
                    for p, gr in zip(params, grads):
                        p.sub_(gr.to(p.dtype), alpha=lr)
        else:
            variables = layer_obj.trainable_variables
            params = [v.value for v in variables]
            fwd = functools.partial(layer_obj, **(call_kwargs or {}))
            if pass_ == "train":
                opt = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
                opt.build(variables)

                def apply(grads):
                    opt.apply(list(grads), variables)

        if mode == "compiled":
            fwd = torch.compile(fwd)

        if pass_ == "forward":
            def step():
                with torch.no_grad():
                    return fwd(x)
            return step
        xg = x if ids else x.detach().clone().requires_grad_(True)
        if pass_ == "fwdbwd":
            # Embedding ids are integers: the table's gradient only.
            sources = params if ids else [xg] + params

            def step():
                y = fwd(xg)
                loss = (y * g).sum()
                return torch.autograd.grad(loss, sources)
            return step

        def step():
            y = fwd(x)
            loss = (y * g).sum()
            grads = torch.autograd.grad(loss, params)
            apply(grads)
            return loss
        return step
