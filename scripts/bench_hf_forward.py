#!/usr/bin/env python3
"""Forward-pass throughput of Hugging Face transformers (PyTorch, CPU, f32) on the
same dequantized GGUF weights `bae bench forward` uses, for BENCHMARKS.md.

    pip install torch transformers gguf numpy
    python scripts/bench_hf_forward.py --gguf models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf

Runs a plain forward (logits) and one with output_hidden_states=True, alternating,
on random token ids (batch x seq), and prints the median tokens/s of each as JSON.
`--threads` sets torch's intra-op threads (default: all cores, as bae uses).
"""
import argparse
import json
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True, help="path to the GGUF file")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--nll", default=None, help="also print the mean next-token NLL of this text (no BOS)")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    directory, name = os.path.split(os.path.abspath(args.gguf))
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen)

    result = {
        "gguf": args.gguf,
        "batch": args.batch,
        "seq": args.seq,
        "threads": args.threads,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if args.nll is not None:
        tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        enc = tok(args.nll, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.inference_mode():
            logits = model(enc).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, enc[0, 1:]).item()
        result["nll"] = nll

    variants = {"plain": False, "hidden_states": True}
    times = {k: [] for k in variants}
    with torch.inference_mode():
        for rnd in range(args.warmup + args.iters):
            for name_, hidden in variants.items():
                start = time.perf_counter()
                out = model(ids, output_hidden_states=hidden)
                _ = out.logits
                elapsed = time.perf_counter() - start
                if rnd >= args.warmup:
                    times[name_].append(elapsed)
    tokens = args.batch * args.seq
    result["results"] = [
        {"variant": k, "seconds": statistics.median(v), "tokens_per_s": tokens / statistics.median(v)}
        for k, v in times.items()
    ]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
