#!/usr/bin/env python3
"""JSON peer test: tsmc::grammars::json (compiled by tsmc::compile_grammar) against Python 3's json.

Generates random JSON values and serialises them with json.dumps under random settings (separators
with extra whitespace, indentation, ensure_ascii on and off, strings with escapes, control
characters and 2-, 3- and 4-byte UTF-8 characters, numbers with fractions and exponents), with
random whitespace around the text; then mutations of those texts (deletions, insertions, swaps,
replacements, duplications, truncations) and a fixed list of edge cases. Each text goes to the C++
driver (tests/constraints/json_peer_driver.cpp), whose answer must equal whether Python's strict
parse accepts it:

    json.loads(text, parse_constant=reject)

where parse_constant rejects NaN, Infinity and -Infinity, the one extension of RFC 8259 that
Python's json.loads accepts by default. The other differences between Python and RFC 8259 are kept
out of the generated texts, each for a stated reason (none is a disagreement of the grammar):
- integers of more than 4300 digits: Python (3.11+) refuses to convert them (a limit on int(), not
  on the syntax); the generator's numbers have at most 40 digits;
- nesting deeper than Python's recursion limit (RecursionError): the generator nests at most 6 deep;
- lone surrogates: a Python str may hold one, UTF-8 cannot encode it; the generator never makes one
  (escaped surrogates \\ud800 are texts of ASCII and are compared: both accept them, as RFC 8259's
  grammar does).
Exits 1 on any disagreement or if fewer than 5000 texts were compared.

usage: json_peer.py DRIVER [--seed N] [--values N]
"""
import argparse
import json
import random
import subprocess
import sys

STRING_CHARS = (list("abcxyz019 _-/'") + ['"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "\b", "\f", "\r"]
                + ["é", "ß", "ж", "中", "日", "😀", "🙂", "\u2028", "\ufeff", "\u00a0"])
INSERT_CHARS = (list("{}[],:\"\\ \t\n\r0123456789-+.eEtruefalsnl") + ["\x00", "\x0b", "\x7f", "é", "中", "😀",
                                                                         "\u00a0", "\ufeff", "１", "u", "x", "'"])
EDGE_CASES = [
    "", " ", "0", "-0", "01", "-01", "1.", ".5", "1.e5", "1e", "1e+", "1E-0", "-", "+1", "0x10", "1_000",
    "NaN", "Infinity", "-Infinity", "nan", "inf", "true", "True", "null", "nul", "[", "]", "[]", "{}", "[1,]",
    "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "{'a':1}", "\"\\u00e9\"", "\"\\ud800\"", "\"\\udc00\\ud800\"",
    "\"\\u12\"", "\"\\U0001F600\"", "\"\\x41\"", "\"\\'\"", "\"\\/\"", "\"\x7f\"", "\"\x1f\"", "\"\t\"",
    "\ufeff1", "\u00a01", "1\u00a0", "１", "[1\n,\r2\t]", " \t\n\r[] \t\n\r", "[1 2]", "\"a\" \"b\"", "[[[[[[]]]]]]",
    "{\"\":{\"\":{\"\":[]}}}", "1e400", "-1e-400", "123456789012345678901234567890", "\"\u2028\u2029\"",
    "[\"a\",]", "[true false]", "{\"a\":}", "{:1}", "\"\\\"", "\"\\\\\"", "[-]", "[--1]", "[1-1]", "1.5e+3.2",
]


def random_string(rng):
    return "".join(rng.choice(STRING_CHARS) for _ in range(rng.randint(0, 8)))


def random_number(rng):
    r = rng.random()
    if r < 0.4:
        return rng.randint(-10 ** rng.randint(1, 40), 10 ** rng.randint(1, 40))
    if r < 0.6:
        return rng.randint(-20, 20)
    if r < 0.8:
        return rng.uniform(-1e6, 1e6)
    return rng.choice([1.0, -0.0, 0.5, 1e-7, 3.25e300, -2.5e-300, 1e22, 123456.789e10])


def random_value(rng, depth):
    r = rng.random()
    if depth >= 6 or r < 0.45:
        kind = rng.randint(0, 4)
        if kind == 0:
            return random_string(rng)
        if kind == 1:
            return random_number(rng)
        return [True, False, None][kind - 2]
    if r < 0.75:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {random_string(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def random_ws(rng):
    return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice([0, 0, 1, 2])))


def dumps(rng, value):
    item_sep = random_ws(rng) + "," + random_ws(rng)
    key_sep = random_ws(rng) + ":" + random_ws(rng)
    indent = rng.choice([None, None, 0, 2, "\t", " \r\n "])
    if indent is not None and rng.random() < 0.5:
        item_sep = item_sep.rstrip(" \t\n\r") or ","  # json.dumps puts the newline after the separator
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5, separators=(item_sep, key_sep), indent=indent,
                      allow_nan=False)
    return random_ws(rng) + text + random_ws(rng)


def mutate(rng, text):
    ops = rng.randint(1, 3)
    for _ in range(ops):
        r = rng.random()
        i = rng.randint(0, len(text))
        if r < 0.25 and text:
            i = min(i, len(text) - 1)
            text = text[:i] + text[i + 1:]
        elif r < 0.5:
            text = text[:i] + rng.choice(INSERT_CHARS) + text[i:]
        elif r < 0.65 and len(text) >= 2:
            i = min(i, len(text) - 2)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        elif r < 0.8 and text:
            i = min(i, len(text) - 1)
            text = text[:i] + rng.choice(INSERT_CHARS) + text[i + 1:]
        elif r < 0.9 and text:
            j = rng.randint(i, len(text))
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i]
    return text


def reject_constant(name):
    raise ValueError("not RFC 8259: " + name)


def python_accepts(text):
    try:
        json.loads(text, parse_constant=reject_constant)
        return True
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("driver")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--values", type=int, default=2500)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    texts = list(EDGE_CASES)
    for _ in range(args.values):
        valid = dumps(rng, random_value(rng, 0))
        texts.append(valid)
        texts.append(mutate(rng, valid))
        if rng.random() < 0.5:
            texts.append(valid[:rng.randint(0, len(valid))])
    # A long string and a long number (the recogniser's states must not grow with them).
    texts.append(json.dumps(["x" * 5000, 10 ** 39, "é" * 2000]))

    lines = [t.encode("utf-8").hex() for t in texts] + ["states"]
    proc = subprocess.run([args.driver], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    answers = proc.stdout.splitlines()
    if len(answers) != len(lines):
        print("driver answered %d lines for %d" % (len(answers), len(lines)))
        return 1
    accepted = disagreements = 0
    for text, answer in zip(texts, answers):
        ours = answer == "1"
        theirs = python_accepts(text)
        accepted += theirs
        if ours != theirs:
            disagreements += 1
            if disagreements <= 20:
                print("DISAGREE: %r: tsmc %s, Python %s" % (text, ours, theirs))
    print("json peer: %d texts compared, %d valid per Python, %d invalid, %d disagreements, at most %d Earley states interned at once"
          % (len(texts), accepted, len(texts) - accepted, disagreements, int(answers[-1])))
    if len(texts) < 5000:
        print("too few texts: %d < 5000" % len(texts))
        return 1
    if accepted < len(texts) // 4 or len(texts) - accepted < len(texts) // 4:
        print("unbalanced: both valid and invalid texts must be a quarter of the texts at least")
        return 1
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
