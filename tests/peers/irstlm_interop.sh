#!/usr/bin/env bash
# Peer interoperability with IRSTLM (Debian package irstlm; scripts/install-deps.sh installs it).
# For the built-in story grammar's corpus, as it is and with case (each sentence's first word and
# the names capitalised): IRSTLM's own tools build an interpolated Kneser-Ney trigram model
# (add-start-end.sh, build-lm.sh -s kneser-ney, compile-lm --text=yes: an ARPA file with IRSTLM's
# quirks: "<s> <s>" n-grams, <s> with a probability, log10 values a little above 0), tsmc loads
# that ARPA file, and the perplexity of held-out sentences (the grammar with another seed) by
# tsmc must equal IRSTLM's own (compile-lm --eval, its OOV penalty off: --dub = 1 + the
# vocabulary size) within 1e-4 relative. On the cased model tsmc must keep the case (the
# lower-cased text, what the tokenizer read before, must do worse).
#   irstlm_interop.sh TOOL WORKDIR      (TOOL: the arpa_peer_tool executable)
set -euo pipefail
tool=$1
work=$2
bin=${IRSTLM_BIN:-/usr/lib/irstlm/bin}
if [ ! -x "$bin/compile-lm" ] || [ ! -x "$bin/build-lm.sh" ]; then
  echo "irstlm_interop: IRSTLM is not installed ($bin/compile-lm): run scripts/install-deps.sh" >&2
  exit 1
fi
rm -rf "$work"
mkdir -p "$work"
cd "$work"

check() {
  local name=$1
  shift
  "$tool" corpus "train.$name.txt" "heldout.$name.txt" 5000 1000 "$@"
  "$bin/add-start-end.sh" < "train.$name.txt" > "train.$name.se"
  "$bin/add-start-end.sh" < "heldout.$name.txt" > "heldout.$name.se"
  IRSTLM=$(dirname "$bin") "$bin/build-lm.sh" -i "train.$name.se" -n 3 -k 1 -s kneser-ney -o "lm.$name.ilm.gz" \
    -t "stat.$name" > "build-lm.$name.log" 2>&1
  "$bin/compile-lm" "lm.$name.ilm.gz" --text=yes "$name.arpa" > "compile-lm.$name.log" 2>&1
  grep -q '^<s> <s>' "$name.arpa" || grep -q '	<s> <s>' "$name.arpa" ||
    { echo "irstlm_interop: $name.arpa has no '<s> <s>' n-gram: IRSTLM's quirk is not exercised" >&2; exit 1; }
  local words dub summary
  words=$(awk '/^ngram +1=/ { sub(/.*=/, ""); print $1 + 0; exit }' "$name.arpa")
  dub=$((words + 1))  # log(dub - V) = 0: no OOV penalty
  summary=$("$bin/compile-lm" "$name.arpa" --eval="heldout.$name.se" --dub="$dub" -d=1 2>&1 | grep '^%%')
  local ours
  ours=$("$tool" perplexity "$name.arpa" "heldout.$name.txt")
  echo "$name: IRSTLM: $summary"
  echo "$name: tsmc:   $ours"
  # IRSTLM prints PP with 2 decimals; logPr (log10) with 2 decimals over thousands of tokens
  # gives PP = 10^(-logPr / Nw) to about 1e-6.
  awk -v irst="$summary" -v ours="$ours" -v name="$name" 'BEGIN {
    n = split(irst, f, /[ =%]+/); for (i = 1; i < n; ++i) v[f[i]] = f[i + 1];
    split(ours, g, / /); for (i = 1; i < length(g); i += 2) w[g[i]] = g[i + 1];
    pp = 10 ^ (-v["logPr"] / v["Nw"]);
    rel = w["perplexity"] / pp - 1; if (rel < 0) rel = -rel;
    printf "%s: perplexity IRSTLM %.6f, tsmc %.6f, relative difference %.3g (tokens %d and %d)\n", name, pp,
           w["perplexity"], rel, v["Nw"], w["tokens"];
    if (v["Nw"] != w["tokens"]) { print name ": the token counts differ"; exit 1 }
    if (v["Noov"] != w["unknown"]) { print name ": the unknown-word counts differ"; exit 1 }
    if (!(rel <= 1e-4)) { print name ": the perplexities differ by more than 1e-4 relative"; exit 1 }
  }'
  echo "$ours"
}

check plain > plain.out
cat plain.out
grep -q 'keeps_case 0' plain.out || { echo "irstlm_interop: a lower-case model must not keep case" >&2; exit 1; }
check cased --cased > cased.out
cat cased.out
grep -q 'keeps_case 1' cased.out || { echo "irstlm_interop: the cased model must keep case" >&2; exit 1; }
lowered=$("$tool" perplexity cased.arpa heldout.cased.txt --lower)
echo "cased, text lower-cased: $lowered"
awk -v kept="$(tail -1 cased.out)" -v lowered="$lowered" 'BEGIN {
  split(kept, a, / /); split(lowered, b, / /);
  if (!(b[6] > a[6])) { print "irstlm_interop: lower-casing the text should raise the perplexity"; exit 1 }
}'
echo "irstlm_interop: tsmc reads IRSTLM's ARPA files and matches its perplexity"
