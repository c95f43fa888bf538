// data_test.mjs - the viewer's data reader (viewer/data.js) against damaged
// input, in node: every damaged copy of real data (bytes flipped, cut short,
// numbers in the description changed) must either read or be refused with
// a TraceError (the page then says so in words), never throw anything else
// or hang.
//
// usage: node data_test.mjs VIEWER_DIR DATA_FILE
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, file] = process.argv.slice(2);
const { parseTrace, TraceError } = await import(pathToFileURL(path.join(dir, 'data.js')));
const good = fs.readFileSync(file);
let refused = 0, read = 0, failures = 0;

function attempt(bytes, what) {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  try {
    parseTrace(buf);
    read++;
  } catch (e) {
    if (e instanceof TraceError) refused++;
    else { failures++; console.log('FAIL ' + what + ': ' + e.stack); }
  }
}

attempt(new Uint8Array(good), 'the good data');
if (read !== 1) { console.log('FAIL the good data is refused'); process.exit(1); }
let seed = 7;
const rand = n => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
for (let i = 0; i < 3000; i++) {
  const b = new Uint8Array(good);
  const flips = 1 + rand(4);
  for (let k = 0; k < flips; k++) b[rand(b.length)] ^= 1 << rand(8);
  attempt(b, 'flip ' + i);
}
for (let n = 0; n < good.length; n += Math.max(1, good.length >> 9)) attempt(new Uint8Array(good.subarray(0, n)), 'cut at ' + n);
// numbers in the description: each replaced by hostile values
const jlen = good.readUInt32LE(8);
const json = good.subarray(16, 16 + jlen).toString('utf8');
const numbers = [...json.matchAll(/-?\d+(\.\d+)?/g)];
for (const m of numbers.slice(0, 400)) {
  for (const v of ['-1', '1e308', '99999999999', '0.5', 'null', '"x"', '[]']) {
    // same length (JSON may end in spaces), so the arrays stay in place
    const j = Buffer.from(json.slice(0, m.index) + v + json.slice(m.index + m[0].length));
    if (j.length > jlen) continue;
    const b = Buffer.from(good);
    b.fill(0x20, 16, 16 + jlen);
    j.copy(b, 16);
    attempt(new Uint8Array(b), 'number ' + m[0] + ' at ' + m.index + ' -> ' + v);
  }
}
console.log(read + ' read, ' + refused + ' refused, ' + failures + ' failures');
process.exit(failures ? 1 : 0);
