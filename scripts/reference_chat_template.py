#!/usr/bin/env python3
"""Renders chat messages with Hugging Face transformers' apply_chat_template, for the
test that checks the judge's prompts (bae features --judge self) against it.

    .venv/bin/python scripts/reference_chat_template.py MODEL.gguf < conversations.json

conversations.json is a list of conversations, each a list of {"role", "content"}
objects. Prints a JSON list with one object per conversation: the prompt text with the
generation prompt appended, and its token ids.
"""
import json
import os
import sys

from transformers import AutoTokenizer


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))
    out = []
    for messages in json.load(sys.stdin):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)
        out.append({"text": text, "ids": [int(i) for i in ids["input_ids"]]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
