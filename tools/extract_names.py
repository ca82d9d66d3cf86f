#!/usr/bin/python3
"""Writes data/names.txt: the proper names of data/genesis.txt, one per line.

A name here is a capitalised word of three letters or more that never occurs
in lower case anywhere in the text (so "And" or "God" at a sentence start is
not one, but "Methuselah" is). Sorted, one per line.

    /usr/bin/python3 tools/extract_names.py
"""
import os
import re

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
text = open(os.path.join(root, "data", "genesis.txt"), encoding="utf-8").read()
words = re.findall(r"[A-Za-z]+", text)
lower = {w for w in words if w[0].islower()}
names = sorted({w for w in words if len(w) >= 3 and w[0].isupper() and w[1:].islower() and w.lower() not in lower})
with open(os.path.join(root, "data", "names.txt"), "w", encoding="utf-8") as f:
    f.write("".join(n + "\n" for n in names))
print(f"{len(names)} names written to data/names.txt")
