#!/usr/bin/env python3
"""Reference residual-stream activations from Hugging Face transformers, written in the
format of `bae hidden-states`, so the two can be compared tensor by tensor.

    python scripts/reference_hidden_states.py --model DIR --prompt "text" [--prompt ...] \\
        [--no-bos] --out reference.safetensors

DIR is a Hugging Face directory (config.json, *.safetensors, tokenizer.json). The model
runs in float32 with eager attention, one prompt at a time. Prompts are tokenized with
DIR/tokenizer.json through the `tokenizers` library, adding its special tokens unless
--no-bos, exactly as bae does. Written tensors (f32 [seq, d_model] unless noted):

    p{i}.input_ids                 u32 [seq]
    p{i}.hook_embed                embedding rows, before Gemma's sqrt(d_model) scale
    p{i}.blocks.{l}.hook_resid_pre  hidden_states[l] (index 0: after Gemma's scale)
    p{i}.blocks.{l}.hook_resid_mid  resid_pre + attention branch (after Gemma 2/3's
                                    post-attention norm), from forward hooks
    p{i}.blocks.{l}.hook_resid_post hidden_states[l + 1], except the last block
    p{i}.ln_final.hook_normalized   the final norm's output

transformers' output_hidden_states has num_layers + 1 entries. In current versions the
last one is the final norm's output rather than the last block's; the script checks
which convention the installed version follows (against a hook on the last block and
on the final norm), records it in the metadata key `last_hidden_state`, and takes the
last block's output from the hook in either case.

Needs: torch, transformers, tokenizers, safetensors, numpy.
"""
import argparse
import json
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", "-m", required=True, help="Hugging Face model directory")
    ap.add_argument("--prompt", "-p", action="append", required=True, help="a prompt; repeat for several")
    ap.add_argument("--no-bos", action="store_true", help="do not add the tokenizer's special tokens")
    ap.add_argument("--out", "-o", required=True, help="output .safetensors file")
    args = ap.parse_args()

    import numpy as np
    import torch
    import transformers
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    tok_path = os.path.join(args.model, "tokenizer.json")
    if not os.path.isfile(tok_path):
        sys.exit(f"{tok_path}: not found; the model directory needs a tokenizer.json")
    tokenizer = Tokenizer.from_file(tok_path)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    inner = model.model
    blocks = inner.layers
    num_layers = len(blocks)

    captured = {}

    def keep(name):
        def hook(_module, _inputs, output):
            captured[name] = (output[0] if isinstance(output, tuple) else output).detach()

        return hook

    handles = [blocks[-1].register_forward_hook(keep("last_block")), inner.norm.register_forward_hook(keep("final_norm"))]
    for l, block in enumerate(blocks):
        # The attention branch as it is added to the residual: Gemma 2/3 normalise it first.
        branch = getattr(block, "post_attention_layernorm", None) if hasattr(block, "pre_feedforward_layernorm") else None
        handles.append((branch or block.self_attn).register_forward_hook(keep(f"attn_branch.{l}")))

    tensors = {}
    conventions = set()
    with torch.inference_mode():
        for i, text in enumerate(args.prompt):
            ids = tokenizer.encode(text, add_special_tokens=not args.no_bos).ids
            if not ids:
                sys.exit(f"prompt {i} ({text!r}) has no tokens")
            input_ids = torch.tensor([ids])
            captured.clear()
            out = model(input_ids, output_hidden_states=True)
            hs = [h[0] for h in out.hidden_states]
            if len(hs) != num_layers + 1:
                sys.exit(f"expected {num_layers + 1} hidden states, got {len(hs)}")
            last_block, final_norm = captured["last_block"][0], captured["final_norm"][0]
            if torch.equal(hs[-1], final_norm) and not torch.equal(hs[-1], last_block):
                conventions.add("after_final_norm")
            elif torch.equal(hs[-1], last_block):
                conventions.add("last_block_output")
            else:
                sys.exit("the last hidden state is neither the last block's output nor the final norm's")
            put = lambda name, t: tensors.__setitem__(f"p{i}.{name}", t.float().contiguous().numpy())
            tensors[f"p{i}.input_ids"] = np.asarray(ids, dtype=np.uint32)
            put("hook_embed", inner.embed_tokens.weight[input_ids[0]])
            for l in range(num_layers):
                put(f"blocks.{l}.hook_resid_pre", hs[l])
                put(f"blocks.{l}.hook_resid_mid", hs[l] + captured[f"attn_branch.{l}"][0])
                put(f"blocks.{l}.hook_resid_post", hs[l + 1] if l + 1 < num_layers else last_block)
            put("ln_final.hook_normalized", final_norm)
    for h in handles:
        h.remove()

    metadata = {
        "format": "bae.hidden-states.v1",
        "model": args.model,
        "producer": f"transformers {transformers.__version__}, torch {torch.__version__}, eager, f32",
        "special_tokens": str(not args.no_bos).lower(),
        "prompts": json.dumps(args.prompt),
        "last_hidden_state": ",".join(sorted(conventions)),
    }
    tmp = args.out + ".tmp"
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, args.out)
    print(f"wrote {len(args.prompt)} prompts x {3 * num_layers + 2} hook points to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
