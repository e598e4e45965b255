"""Matrix products with a weight packed once for the CPU's kernels: ``Product``.

A weight used by many products in a row (the decoder's recurrent weights at every position of a training
batch, the output layer at every step of a search) can be laid out once in the form the CPU's matrix
kernel reads fastest, instead of at every call. Tensors in, tensors out; used by ``feeding.py`` (training
with input feeding) and ``model.py`` (decoding).
"""

from __future__ import annotations

from typing import Optional

import torch


class Product:
    """x -> x W^T (+ b) for a weight W [out, in] and an optional bias b [out] used by many products, with W
    packed once for the CPU's matrix kernels where this build of torch can: fp32 through MKL (1.1-1.4x faster
    than ``torch.mm`` for products of 64 rows, 1.05-1.26x for the output layer of a search), bf16 through
    oneDNN (1.25-1.33x for 64 rows); the same sums as ``torch.mm`` / ``F.linear`` in both. Elsewhere (a GPU,
    float64, a CPU without bf16 kernels, an older torch) a plain ``torch.mm`` / ``torch.addmm``.

    ``rows`` is the number of rows the products are expected to have (a hint for the packing; any number
    of rows works). W and b must not change while the Product is used: it keeps W's packed copy.
    """

    def __init__(self, w: torch.Tensor, rows: int, bias: Optional[torch.Tensor] = None) -> None:
        self.w, self.bias, self.rows, self.packed, self.kind = w, bias, rows, None, "mm"
        if w.device.type != "cpu" or (bias is not None and bias.dtype != w.dtype):
            return
        mkl, onednn = getattr(torch.ops, "mkl", None), getattr(torch.ops, "mkldnn", None)
        try:
            if w.dtype == torch.float32 and torch.backends.mkl.is_available() and mkl:
                self.packed, self.kind = mkl._mkl_reorder_linear_weight(w, rows), "mkl"
            elif (w.dtype == torch.bfloat16 and torch.backends.mkldnn.is_available() and onednn
                  and onednn._is_mkldnn_bf16_supported()):
                self.packed, self.kind = onednn._reorder_linear_weight(w, rows), "onednn"
        except (AttributeError, RuntimeError):  # an older or a different build of torch
            self.packed, self.kind = None, "mm"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in] -> [N, out]."""
        if self.kind == "mkl":
            return torch.ops.mkl._mkl_linear(x, self.packed, self.w, self.bias, self.rows)
        if self.kind == "onednn":
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        if self.bias is None:
            return torch.mm(x, self.w.t())
        return torch.addmm(self.bias, x, self.w.t())
