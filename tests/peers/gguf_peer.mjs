// The GGUF reader against a real peer: every <name>.gguf in the directory (written by
// gguf_peer_files with tsmc's writer) is parsed by the npm package @huggingface/gguf and compared
// with <name>.json, what tsmc's reader read from the same file: version, tensor and metadata
// counts, every key's type, array element type and value, every tensor's name, shape, type and
// offset, and the data section's offset. Prints "N passed, M failed"; exits 1 on any difference.
//   node tests/peers/gguf_peer.mjs <dir>
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";

const dir = process.argv[2];
let passed = 0, failed = 0;
const fail = (file, what, ours, theirs) => {
  failed++;
  console.log(`MISMATCH ${file}: ${what}: tsmc ${ours}, @huggingface/gguf ${theirs}`);
};
const show = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x));

// Compares one value of GGUF type `type` (tsmc's JSON form) with the peer's.
function same(type, ours, theirs) {
  switch (type) {
    case 6: return Math.fround(ours) === theirs;                         // float32
    case 10: case 11: return typeof theirs === "bigint" && BigInt(ours) === theirs;  // uint64, int64
    case 9: return Array.isArray(theirs);                                // nested: compared below
    default: return ours === theirs;
  }
}
function sameArray(subType, ours, theirs) {
  if (!Array.isArray(theirs) || theirs.length !== ours.length) return false;
  for (let i = 0; i < ours.length; i++) {
    if (subType === 9) {
      if (!Array.isArray(theirs[i]) || theirs[i].length !== ours[i].length) return false;
      for (let j = 0; j < ours[i].length; j++) {
        const a = ours[i][j], b = theirs[i][j];
        if (!(a === b || (typeof a === "number" && typeof b === "number" && Math.fround(a) === b))) return false;
      }
    } else if (!same(subType, ours[i], theirs[i])) {
      return false;
    }
  }
  return true;
}

const files = readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort();
if (files.length === 0) {
  console.log(`no .gguf files in ${dir}`);
  process.exit(1);
}
for (const file of files) {
  const ours = JSON.parse(readFileSync(join(dir, file.replace(/\.gguf$/, ".json")), "utf8"));
  const theirs = await gguf(join(dir, file), { typedMetadata: true, allowLocalFile: true });
  const before = failed;
  const tm = theirs.typedMetadata;
  if (tm.version.value !== ours.version) fail(file, "version", ours.version, tm.version.value);
  if (tm.tensor_count.value !== BigInt(ours.tensor_count)) fail(file, "tensor_count", ours.tensor_count, tm.tensor_count.value);
  if (tm.kv_count.value !== BigInt(ours.kv_count)) fail(file, "kv_count", ours.kv_count, tm.kv_count.value);
  const keys = Object.keys(tm).filter((k) => !["version", "tensor_count", "kv_count"].includes(k));
  if (keys.length !== ours.metadata.length) fail(file, "number of keys", ours.metadata.length, keys.length);
  for (const m of ours.metadata) {
    const t = tm[m.key];
    if (!t) { fail(file, `key ${m.key}`, "present", "absent"); continue; }
    if (t.type !== m.type) fail(file, `key ${m.key} type`, m.type, t.type);
    if (m.type === 9) {
      if (t.subType !== m.subType) fail(file, `key ${m.key} element type`, m.subType, t.subType);
      if (!sameArray(m.subType, m.value, t.value)) fail(file, `key ${m.key} value`, show(m.value), show(t.value));
    } else if (!same(m.type, m.value, t.value)) {
      fail(file, `key ${m.key} value`, show(m.value), show(t.value));
    }
  }
  if (theirs.tensorInfos.length !== ours.tensors.length) fail(file, "tensors", ours.tensors.length, theirs.tensorInfos.length);
  ours.tensors.forEach((o, i) => {
    const t = theirs.tensorInfos[i];
    if (!t) return;
    if (t.name !== o.name) fail(file, `tensor ${i} name`, o.name, t.name);
    if (t.n_dims !== o.shape.length || t.shape.some((d, j) => d !== BigInt(o.shape[j])))
      fail(file, `tensor ${o.name} shape`, show(o.shape), show(t.shape));
    if (t.dtype !== o.type) fail(file, `tensor ${o.name} type`, o.type, t.dtype);
    if (t.offset !== BigInt(o.offset)) fail(file, `tensor ${o.name} offset`, o.offset, t.offset);
  });
  if (theirs.tensorDataOffset !== BigInt(ours.data_offset))
    fail(file, "data section offset", ours.data_offset, theirs.tensorDataOffset);
  if (failed === before) {
    passed++;
    console.log(`ok ${file}: ${ours.kv_count} keys, ${ours.tensor_count} tensors`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
