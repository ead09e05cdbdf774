#!/usr/bin/env python3
"""Loads a bae training run with nothing but safetensors and numpy, encodes activations
with it, and writes the codes, so they can be compared with bae's own: proof that the
checkpoint files are usable outside bae.

    python scripts/check_checkpoint.py --run RUN_DIR --acts ROWS.safetensors --tensor NAME --out codes.safetensors

RUN_DIR holds cfg.json and sae_weights.safetensors (W_enc [d, d'], b_enc [d'],
W_dec [d', d], b_dec [d], and threshold [d'] for JumpReLU and BatchTopK; the SAELens
layout). With pre = x @ W_enc + b_enc, the activations follow cfg.json's
"bae_architecture":

    binary      1 where pre > 0, else 0 (the BAE's codes)
    relu_l1     max(pre, 0)
    topk        max(pre, 0) at each row's k largest pre (k in cfg.json), else 0
    batch_topk  pre where pre > threshold, else 0 (the inference rule)
    jumprelu    pre where pre > threshold, else 0

They are written as f32 [rows, d'] under "activations", and the active pattern
(activation != 0) as u8 under "codes"; the reconstruction activations @ W_dec + b_dec
is checked for shape and its mean squared error printed.
"""
import argparse
import json
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--acts", required=True)
    ap.add_argument("--tensor", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import numpy as np
    from safetensors.numpy import load_file, save_file

    with open(os.path.join(args.run, "cfg.json")) as f:
        cfg = json.load(f)
    w = load_file(os.path.join(args.run, "sae_weights.safetensors"))
    d, h = cfg["d_in"], cfg["d_sae"]
    expected = {"W_enc": (d, h), "b_enc": (h,), "W_dec": (h, d), "b_dec": (d,)}
    for name, shape in expected.items():
        if w[name].shape != shape:
            sys.exit(f"{name} has shape {w[name].shape}, cfg.json implies {shape}")
    x = load_file(args.acts)[args.tensor].astype(np.float32)
    pre = x @ w["W_enc"] + w["b_enc"]
    architecture = cfg["bae_architecture"]
    if architecture == "binary":
        act = (pre > 0).astype(np.float32)
    elif architecture == "relu_l1":
        act = np.maximum(pre, 0)
    elif architecture == "topk":
        k = cfg["k"]
        keep = np.zeros_like(pre, dtype=bool)
        np.put_along_axis(keep, np.argsort(-pre, axis=1, kind="stable")[:, :k], True, axis=1)
        act = np.where(keep, np.maximum(pre, 0), 0).astype(np.float32)
    elif architecture in ("batch_topk", "jumprelu"):
        act = np.where(pre > w["threshold"], pre, 0).astype(np.float32)
    else:
        sys.exit(f"unknown bae_architecture {architecture!r}")
    reconstruction = act @ w["W_dec"] + w["b_dec"]
    assert reconstruction.shape == x.shape
    mse = float(np.mean((x - reconstruction) ** 2))
    codes = (act != 0).astype(np.uint8)
    save_file({"codes": codes, "activations": act}, args.out)
    print(json.dumps({"architecture": architecture, "rows": int(x.shape[0]), "d_in": d, "d_sae": h, "mse": mse,
                      "active": int(codes.sum())}))


if __name__ == "__main__":
    main()
