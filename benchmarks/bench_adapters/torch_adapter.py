"""Role: PyTorch steps for the three impls (bare: ``torch.addmm(b, x, W)`` /
``torch.relu`` / ``torch.nn.functional.layer_norm``), eager or
``torch.compile``."""

from __future__ import annotations

import keras

from bench_adapters.common import LEARNING_RATE, compute_dtype


class TorchAdapter:
    def __init__(self, torch_compile=False):
        import torch
        self.torch = torch
        self.torch_compile = torch_compile

    def sync(self, out):
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy):
        torch = self.torch
        from keras import ops
        cd = compute_dtype(policy)
        x = ops.cast(ops.convert_to_tensor(x_np), cd)
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
            fwd = layer_obj
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
        xg = x.detach().clone().requires_grad_(True)
        if pass_ == "fwdbwd":
            def step():
                y = fwd(xg)
                loss = (y * g).sum()
                return torch.autograd.grad(loss, [xg] + params)
            return step

        def step():
            y = fwd(x)
            loss = (y * g).sum()
            grads = torch.autograd.grad(loss, params)
            apply(grads)
            return loss
        return step
