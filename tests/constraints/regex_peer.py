#!/usr/bin/env python3
"""Regex peer test: tsmc::compile_regex against Python 3's re.fullmatch(pattern, text, re.ASCII).

Generates random patterns within the documented syntax (include/tsmc/constraints/regex.hpp) over a
small alphabet with UTF-8 characters, and for each pattern random texts: strings drawn from the
pattern itself (members), their mutations, and random strings. Each (pattern, text) pair is sent to
the C++ driver (tests/constraints/regex_peer_driver.cpp), and its answer must equal Python's.
Malformed patterns (a fixed list) must be rejected by both. Exits 1 on any disagreement.

usage: regex_peer.py DRIVER [--seed N] [--patterns N]
"""
import argparse
import random
import re
import subprocess
import warnings
import sys

# Literals: ASCII letters, a digit, a space, and 2-, 3- and 4-byte UTF-8 characters.
LITERALS = ["a", "b", "c", "1", " ", "é", "ж", "中", "😀"]
TEXT_ALPHABET = LITERALS + ["\n", "_", "Z", "-", ".", "ë", "ß", "日", "🙂", "\x00"]
CLASS_RANGES = ["a-c", "b-z", "0-9", "à-ÿ", "а-я", "一-龥", "😀-🙏", "\u0100-\uffff", "\\x00-\\x7f"]
ESCAPES = ["\\.", "\\*", "\\+", "\\?", "\\(", "\\)", "\\[", "\\]", "\\{", "\\}", "\\|", "\\\\", "\\-",
           "\\n", "\\t", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S", "\\x61", "\\u00e9", "\\u4e2d", "(?:\\0)"]


def gen_class(rng):
    parts = []
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.4:
            parts.append(rng.choice(LITERALS[:8]).replace(" ", "\\ "))
        elif r < 0.75:
            parts.append(rng.choice(CLASS_RANGES))
        else:
            parts.append(rng.choice(["\\d", "\\w", "\\s", "\\.", "\\]", "\\-", "\\n", "\\W"]))
    negate = rng.random() < 0.3
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def gen_atom(rng, depth):
    r = rng.random()
    if r < 0.45:
        return rng.choice(LITERALS)
    if r < 0.55:
        return "."
    if r < 0.68:
        return gen_class(rng)
    if r < 0.78:
        return rng.choice(ESCAPES)
    if depth < 2:
        inner = gen_alt(rng, depth + 1)
        return ("(?:" if rng.random() < 0.3 else "(") + inner + ")"
    return rng.choice(LITERALS)


def gen_quantifier(rng, bounded=False):
    r = rng.random()
    if bounded:  # after a group with an unbounded repeat inside: no nested stars (Python backtracks)
        return rng.choice(["", "", "?", "{0,2}", "{2}"])
    if r < 0.55:
        return ""
    if r < 0.67:
        return "*"
    if r < 0.77:
        return "+"
    if r < 0.87:
        return "?"
    m = rng.randint(0, 3)
    n = m + rng.randint(0, 2)
    return rng.choice(["{%d}" % m, "{%d,}" % m, "{%d,%d}" % (m, n), "{,%d}" % n])


def gen_concat(rng, depth):
    out = []
    for _ in range(rng.randint(0 if depth else 1, 3)):
        atom = gen_atom(rng, depth)
        nested = atom.startswith("(") and any(q in atom for q in "*+,")
        out.append(atom + gen_quantifier(rng, nested))
    return "".join(out)


def gen_alt(rng, depth):
    branches = [gen_concat(rng, depth) for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 3))]
    return "|".join(branches)


def member(rng, tree, budget=12):
    """A random string matched by a parsed pattern (re's own parser gives the tree)."""
    out = []

    def walk(items):
        for op, av in items:
            emit(op, av)

    def emit(op, av):
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "ANY":
            out.append(rng.choice([c for c in TEXT_ALPHABET if c != "\n"]))
        elif name == "IN":
            cands = [c for c in TEXT_ALPHABET + ["a", "m", "я", "中", "😃", "Ā"]
                     if re.fullmatch(sre_class_pattern(av), c, re.ASCII)]
            if cands:
                out.append(rng.choice(cands))
        elif name == "SUBPATTERN":
            walk(av[-1])
        elif name == "BRANCH":
            walk(rng.choice(av[1]))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, sub = av
            hi = min(hi, lo + 3)
            for _ in range(rng.randint(lo, hi)):
                walk(sub)
        elif name == "CATEGORY":
            pass

    walk(tree)
    return "".join(out)


def sre_class_pattern(items):
    """Rebuilds a class from sre items, to test candidate characters against it."""
    neg = ""
    body = []
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            neg = "^"
        elif name == "LITERAL":
            body.append(re.escape(chr(av)))
        elif name == "RANGE":
            body.append(re.escape(chr(av[0])) + "-" + re.escape(chr(av[1])))
        elif name == "CATEGORY":
            body.append({"CATEGORY_DIGIT": "\\d", "CATEGORY_NOT_DIGIT": "\\D", "CATEGORY_WORD": "\\w",
                         "CATEGORY_NOT_WORD": "\\W", "CATEGORY_SPACE": "\\s", "CATEGORY_NOT_SPACE": "\\S"}[str(av)])
    return "[" + neg + "".join(body) + "]"


def parse_tree(pattern):
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse
    return sre_parse.parse(pattern, re.ASCII)


def mutate(rng, s):
    chars = list(s)
    r = rng.random()
    if r < 0.33 and chars:
        del chars[rng.randrange(len(chars))]
    elif r < 0.66:
        chars.insert(rng.randint(0, len(chars)), rng.choice(TEXT_ALPHABET))
    elif chars:
        chars[rng.randrange(len(chars))] = rng.choice(TEXT_ALPHABET)
    return "".join(chars)


MALFORMED = ["(", ")", "a)", "(a", "[a", "[]", "[z-a]", "*", "a**", "a{2}{3}", "+a", "a|*", "(?P<x>a)", "(?i)a",
             "a{3,2}", "\\", "a\\", "[a-\\d]", "\\q", "\\x4", "\\uD800", "^a", "a$", "{2}", "a{", "a{2", "a{2,3",
             "]", "}", "[[]", "\\01", "a{1001}", "[a-]b-]", "(?", "(?:a", "[\\d-z]"]


def main():
    warnings.simplefilter("ignore", FutureWarning)
    ap = argparse.ArgumentParser()
    ap.add_argument("driver")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--patterns", type=int, default=700)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    jobs = []  # (pattern, [texts])
    for _ in range(args.patterns):
        pattern = gen_alt(rng, 0)
        while len(pattern) > 40:
            pattern = gen_alt(rng, 0)
        try:
            tree = parse_tree(pattern)
        except re.error as e:
            print("generator made a pattern Python rejects: %r (%s)" % (pattern, e))
            return 1
        texts = set()
        for _ in range(6):
            m = member(rng, tree)
            texts.add(m)
            texts.add(mutate(rng, m))
            texts.add(mutate(rng, mutate(rng, m)))
        while len(texts) < 20:
            texts.add("".join(rng.choice(TEXT_ALPHABET) for _ in range(rng.randint(0, 6))))
        jobs.append((pattern, sorted(texts)))

    lines = []
    for pattern, texts in jobs:
        lines.append("P " + pattern.encode("utf-8").hex())
        lines.extend("S " + t.encode("utf-8").hex() for t in texts)
    for pattern in MALFORMED:
        lines.append("P " + pattern.encode("utf-8").hex())
    proc = subprocess.run([args.driver], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    answers = proc.stdout.splitlines()
    pos = 0
    pairs = matches = disagreements = 0
    for pattern, texts in jobs:
        compiled = answers[pos]
        pos += 1
        if not compiled.startswith("ok"):
            print("DISAGREE: tsmc rejects %r, Python accepts it: %s" % (pattern, compiled))
            disagreements += 1
        for t in texts:
            ours = answers[pos] == "1"
            pos += 1
            theirs = re.fullmatch(pattern, t, re.ASCII) is not None
            pairs += 1
            matches += theirs
            if ours != theirs:
                disagreements += 1
                if disagreements <= 20:
                    print("DISAGREE: pattern %r text %r: tsmc %s, Python %s" % (pattern, t, ours, theirs))
    for pattern in MALFORMED:
        ours = answers[pos]
        pos += 1
        try:
            re.compile(pattern, re.ASCII)
            python_rejects = False
        except re.error:
            python_rejects = True
        # Every malformed pattern must be rejected by tsmc with a position; where Python accepts a
        # pattern outside the documented syntax (a lone '{', ']', '}', "[a-]b-]"), tsmc's rejection is
        # by design (documented), not a disagreement within the syntax.
        if not ours.startswith("E ") or "pattern at position" not in ours:
            print("DISAGREE: tsmc accepts malformed %r (Python rejects: %s): %s" % (pattern, python_rejects, ours))
            disagreements += 1
    print("regex peer: %d patterns, %d (pattern, text) pairs, %d matches, %d malformed patterns rejected, "
          "%d disagreements" % (len(jobs), pairs, matches, len(MALFORMED), disagreements))
    if pairs < 10000:
        print("too few pairs: %d < 10000" % pairs)
        return 1
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
