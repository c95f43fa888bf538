// format.js - names, colours and text: stop reasons, durations, times,
// and what a step waited on (the same words as `coscope export`).

// Stop reasons: CS_WAIT_* (0-11) and CS_STOP_* (16-18) of trace_format.h,
// grouped into the colours of the legend.
export const REASONS = {
  0: ['none', '#8c959f'],
  1: ['sleep', '#4e79a7'],
  2: ['task', '#59a14f'],
  3: ['lock', '#e15759'],
  4: ['event', '#b07aa1'],
  5: ['semaphore', '#b07aa1'],
  6: ['queue-put', '#f28e2b'],
  7: ['queue-get', '#f28e2b'],
  8: ['fd-read', '#76b7b2'],
  9: ['fd-write', '#76b7b2'],
  10: ['thread', '#edc948'],
  11: ['yield', '#bab0ac'],
  16: ['done', '#1f4e79'],
  17: ['raised', '#b31b1b'],
  18: ['cancelled', '#6e7781'],
};

// The legend: one entry a colour.
export const LEGEND = [
  ['timer', '#4e79a7'], ['await task', '#59a14f'], ['lock', '#e15759'],
  ['event/semaphore', '#b07aa1'], ['queue', '#f28e2b'], ['I/O', '#76b7b2'],
  ['to_thread', '#edc948'], ['yield', '#bab0ac'], ['done', '#1f4e79'],
  ['raised', '#b31b1b'], ['cancelled', '#6e7781'], ['loop idle', '#d8dee4'],
  ['warning', '#cf222e'],
];

export const IDLE_COLOUR = '#d8dee4';
export const WARNING_COLOUR = '#cf222e';

export function reasonName(r) {
  return (REASONS[r] || ['?'])[0];
}

export function reasonColour(r) {
  return (REASONS[r] || REASONS[0])[1];
}

// A duration in ns for people: 850ns, 12.3us, 4.56ms, 1.23s, 2m05s.
export function fmtDuration(ns) {
  if (ns < 1000) return Math.round(ns) + 'ns';
  if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 2 : 1) + 'µs';
  if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + 'ms';
  if (ns < 60e9) return (ns / 1e9).toFixed(ns < 1e10 ? 3 : 2) + 's';
  const s = Math.floor(ns / 1e9);
  return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
}

// A time since the first event, in the unit of `big` (the largest time
// on show) with as many decimals as step (ns between neighbouring axis
// ticks) needs: 1.9995s, 2.0000s next to each other, not 1999500µs.
export function fmtTime(ns, step, big = ns) {
  const units = [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs'], [1, 'ns']];
  const [u, name] = units.find(([u]) => Math.abs(big) >= u) || units[3];
  const digits = Math.max(0, Math.min(9, Math.ceil(Math.log10(u / step) - 1e-9)));
  return (ns / u).toFixed(digits) + name;
}

// A tick spacing of 1, 2 or 5 times a power of ten, about `want` ns.
export function niceStep(want) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(want, 1))));
  for (const m of [1, 2, 5, 10]) if (m * p >= want) return m * p;
  return 10 * p;
}

// What step i waited on next, in words; '' if the trace does not say.
export function waitText(model, i) {
  const s = model.steps;
  const target = s.target[i];
  const r = s.reason[i];
  // a yields slice of a batch (cli/timeline.h): target = its steps
  if ((s.flags[i] & 2) && r === 11)
    return target + " yields in a batch (the span is the batch's, shared " +
      'with the tasks that ran in it)';
  if (!(s.flags[i] & 1)) return '';
  switch (r) {
    case 1: return 'timer, deadline at +' +
      ((target - model.meta.first_ns) / 1e9).toFixed(6) + 's';
    case 2: return 'task ' + target + " '" + model.taskNameById(target) + "'";
    case 3: return 'lock ' + target + (s.aux[i] ? ' held by task ' +
      s.aux[i] + " '" + model.taskNameById(s.aux[i]) + "'" : '');
    case 4: case 5: case 6: case 7: return reasonName(r) + ' ' + target;
    case 8: case 9: return 'fd ' + target + (r === 8 ? ' (read)' : ' (write)');
    default: return '';
  }
}

// Escapes text for innerHTML.
export function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}
