// data.js - the viewer's data (written by `coscope view`, see the byte
// table in cli/cmd_view.c) checked and turned into the model: typed arrays
// of steps and loop idle time, tasks with their slice of steps, lanes
// grouped by loop, prefix sums of busy time for level of detail.
// Anything that does not fit is a TraceError with a sentence for people.

export class TraceError extends Error {}

const TYPES = { f64: Float64Array, u32: Uint32Array, u8: Uint8Array };
const STEP_ARRAYS = ['step_start', 'step_end', 'step_target', 'step_aux',
  'step_task', 'step_reason', 'step_flags'];

function fail(what) {
  throw new TraceError('This is not trace data the viewer can read: ' + what +
    '.\nOpen trace files with `coscope view FILE`; this viewer reads what ' +
    'that command hands it.');
}

// The typed array `name` described in desc.arrays, checked against buf.
function typedArray(buf, desc, name, want) {
  const a = desc.arrays && desc.arrays[name];
  if (!a || typeof a !== 'object') fail("array '" + name + "' is missing");
  const T = TYPES[a.type];
  if (!T) fail("array '" + name + "' has an unknown type");
  const { offset, length } = a;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) ||
      offset < 0 || length < 0 || offset % 8 !== 0 ||
      offset + length * T.BYTES_PER_ELEMENT > buf.byteLength)
    fail("array '" + name + "' lies outside the data");
  if (want !== undefined && length !== want)
    fail("array '" + name + "' has " + length + ' elements, not ' + want);
  return new T(buf, offset, length);
}

function parseHeader(buf) {
  if (!(buf instanceof ArrayBuffer) || buf.byteLength < 16)
    fail('it is too short to be trace data');
  const head = new Uint8Array(buf, 0, 8);
  if (String.fromCharCode(...head) !== 'CSVIEW01')
    fail('it does not start with CSVIEW01');
  const jlen = new DataView(buf).getUint32(8, true);
  if (16 + jlen > buf.byteLength) fail('its description is cut short');
  let desc;
  try {
    desc = JSON.parse(new TextDecoder('utf-8', { fatal: true })
      .decode(new Uint8Array(buf, 16, jlen)));
  } catch (e) {
    fail('its description is not valid JSON (' + e.message + ')');
  }
  if (!desc || desc.format !== 'coscope-view') fail('its description is not coscope-view');
  if (desc.version !== 1) fail('it is version ' + desc.version + ', this viewer reads version 1');
  for (const k of ['meta', 'loops', 'tasks', 'warnings', 'stacks'])
    if (!desc[k] || typeof desc[k] !== 'object') fail("'" + k + "' is missing");
  return desc;
}

function readSteps(buf, desc) {
  const n = desc.arrays && desc.arrays.step_start && desc.arrays.step_start.length;
  const a = {};
  for (const name of STEP_ARRAYS) a[name] = typedArray(buf, desc, name, n);
  const steps = {
    start: a.step_start, end: a.step_end, target: a.step_target,
    aux: a.step_aux, task: a.step_task, reason: a.step_reason,
    flags: a.step_flags, length: n,
  };
  steps.busy = prefix(steps.start, steps.end);
  const idleStart = typedArray(buf, desc, 'idle_start');
  const idle = {
    start: idleStart, end: typedArray(buf, desc, 'idle_end', idleStart.length),
    length: idleStart.length,
  };
  idle.busy = prefix(idle.start, idle.end);
  return { steps, idle };
}

// busy[i] = total length of intervals 0..i-1: the time covered between two
// indices is one subtraction.
function prefix(start, end) {
  const p = new Float64Array(start.length + 1);
  let sum = 0;
  for (let i = 0; i < start.length; i++) {
    sum += end[i] - start[i];
    p[i + 1] = sum;
  }
  return p;
}

const isIndex = (v, max) => Number.isSafeInteger(v) && v >= 0 && v <= max;

// Every index and count the description gives is checked before use.
function checkSlices(model) {
  const n = model.steps.length;
  for (const k of ['tasks', 'loops', 'warnings'])
    if (!Array.isArray(model[k]) || model[k].some(x => !x || typeof x !== 'object'))
      fail("'" + k + "' is not a list of objects");
  model.tasks.forEach((t, k) => {
    if (!isIndex(t.first, n) || !isIndex(t.count, n - t.first))
      fail('task ' + k + "'s steps lie outside the step arrays");
    if (!Number.isSafeInteger(t.id) || !Number.isSafeInteger(t.loop))
      fail('task ' + k + ' has no id or loop');
    t.index = k;
    t.name = typeof t.name === 'string' ? t.name : '';
    t.site = typeof t.site === 'string' ? t.site : '';
    t.label = t.name || 'task ' + t.id;
    t.lastEnd = t.count ? model.steps.end[t.first + t.count - 1] : null;
  });
  const task = model.steps.task, ntasks = model.tasks.length;
  for (let i = 0; i < n; i++)
    if (task[i] >= ntasks) fail('step ' + i + ' names task ' + task[i] + ' of ' + ntasks);
  for (const l of model.loops)
    if (!Number.isSafeInteger(l.loop) || !isIndex(l.idle_first, model.idle.length) ||
        !isIndex(l.idle_count, model.idle.length - l.idle_first))
      fail("loop " + l.loop + "'s idle time lies outside the idle arrays");
  for (const w of model.warnings)
    if (!Number.isSafeInteger(w.task) || w.task < -1 || w.task >= ntasks ||
        !Number.isFinite(w.t) || typeof w.kind !== 'string')
      fail('a warning names an unknown task, time or kind');
}

// How many of the slowest steps pull their task's lane up (see makeLanes).
export const SLOW_LANES = 10;

// Lanes, top to bottom: per loop a lane of its idle time, then its tasks,
// those with findings first (a warning, or one of the SLOW_LANES slowest
// steps that stand out), so that the view opens on them, however many lanes there are;
// each such lane says why in lane.finding.
function makeLanes(model) {
  const why = new Map();
  for (const w of model.warnings)
    if (w.task >= 0 && !why.has(w.task)) why.set(w.task, w.kind);
  // the slowest steps that stand out: 1 ms or more, and a tenth of the
  // longest (ten 5 µs steps are no finding)
  const s = model.steps, top = slowestSteps(model, SLOW_LANES);
  const floor = top.length ? Math.max(1e6, (s.end[top[0]] - s.start[top[0]]) / 10) : 0;
  for (const i of top) {
    const k = s.task[i];
    if (s.end[i] - s.start[i] >= floor && !why.has(k)) why.set(k, 'slow step');
  }
  const byLoop = new Map();
  for (const t of model.tasks) {
    if (!byLoop.has(t.loop)) byLoop.set(t.loop, []);
    byLoop.get(t.loop).push(t);
  }
  for (const ts of byLoop.values()) {  // stable: the rest keep their order
    const first = ts.filter(t => why.has(t.index)), rest = ts.filter(t => !why.has(t.index));
    ts.splice(0, ts.length, ...first, ...rest);
  }
  const lanes = [];
  // loops that did something: ran a task, sat idle, or warned
  const warned = new Set(model.warnings.map(w => w.loop));
  const loops = model.loops.filter(l => byLoop.has(l.loop) || l.idle_count > 0 || warned.has(l.loop))
    .map(l => l.loop);
  for (const k of byLoop.keys()) if (!loops.includes(k)) loops.push(k);
  for (const l of loops) {
    const info = model.loops.find(x => x.loop === l);
    lanes.push({ kind: 'loop', loop: l, label: l < 0 ? 'loop ?' : 'loop ' + l +
      (info && info.tid ? ' (thread ' + info.tid + ')' : ''), info });
    for (const t of byLoop.get(l) || [])
      lanes.push({ kind: 'task', loop: l, task: t, label: t.label, finding: why.get(t.index) || null });
  }
  return lanes;
}

// The model of the data in buf (an ArrayBuffer).
export function parseTrace(buf) {
  const desc = parseHeader(buf);
  const { steps, idle } = readSteps(buf, desc);
  const model = {
    meta: desc.meta, loops: desc.loops, tasks: desc.tasks,
    warnings: desc.warnings, stacks: desc.stacks, steps, idle,
  };
  checkSlices(model);
  const byId = new Map(model.tasks.map(t => [t.id, t]));
  model.taskById = id => byId.get(id);
  model.taskNameById = id => (byId.get(id) || { label: '?' }).label;
  model.lanes = makeLanes(model);
  let end = model.meta.duration_ns || 0;
  for (let i = 0; i < steps.length; i++) if (steps.end[i] > end) end = steps.end[i];
  model.duration = Math.max(end, 1000);
  // A trace too long for the browser comes in part (coscope view --from,
  // --max-steps): the window kept, in ns since the first event.
  const w = desc.window;
  model.window = w && Number.isFinite(w.from_ns) && Number.isFinite(w.to_ns) ? w : null;
  model.viewFrom = model.window ? model.window.from_ns : 0;
  if (model.window) model.duration = Math.max(model.window.to_ns, model.viewFrom + 1000);
  model.events = model.meta.events;
  return model;
}

// Index of the first element of a[lo..hi) that is >= x (hi if none).
export function lowerBound(a, x, lo, hi) {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// The n longest steps, longest first (indices into model.steps).
export function slowestSteps(model, n) {
  const s = model.steps;
  const top = [];
  let min = -1;
  for (let i = 0; i < s.length; i++) {
    const d = s.end[i] - s.start[i];
    if (top.length >= n && d <= min) continue;
    top.push(i);
    if (top.length > 2 * n) {
      top.sort((a, b) => (s.end[b] - s.start[b]) - (s.end[a] - s.start[a]));
      top.length = n;
      min = s.end[top[n - 1]] - s.start[top[n - 1]];
    }
  }
  top.sort((a, b) => (s.end[b] - s.start[b]) - (s.end[a] - s.start[a]));
  return top.slice(0, n);
}
