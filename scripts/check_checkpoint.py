#!/usr/bin/env python3
"""Loads a bae training run with nothing but safetensors and numpy, encodes activations
with it, and writes the codes, so they can be compared with bae's own: proof that the
checkpoint files are usable outside bae.

    python scripts/check_checkpoint.py --run RUN_DIR --acts ROWS.safetensors --tensor NAME --out codes.safetensors

RUN_DIR holds cfg.json and sae_weights.safetensors (W_enc [d, d'], b_enc [d'],
W_dec [d', d], b_dec [d]; the SAELens layout). Codes are 1 where x @ W_enc + b_enc > 0,
written as u8 [rows, d'] under "codes"; the reconstruction codes @ W_dec + b_dec is
checked for shape and its mean squared error printed.
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
    codes = (x @ w["W_enc"] + w["b_enc"] > 0).astype(np.uint8)
    reconstruction = codes.astype(np.float32) @ w["W_dec"] + w["b_dec"]
    assert reconstruction.shape == x.shape
    mse = float(np.mean((x - reconstruction) ** 2))
    save_file({"codes": codes}, args.out)
    print(json.dumps({"rows": int(x.shape[0]), "d_in": d, "d_sae": h, "mse": mse, "ones": int(codes.sum())}))


if __name__ == "__main__":
    main()
