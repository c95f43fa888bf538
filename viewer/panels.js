// panels.js - everything around the canvas: the legend, the details of
// what was clicked, the tables of warnings and slowest steps (a row jumps
// to its place on the timeline), the task filter, the keyboard.

import { LEGEND, reasonName, fmtDuration, waitText, esc } from './format.js';
import { slowestSteps } from './data.js';

const TABLE_ROWS = 500;

export function showLegend(el) {
  el.innerHTML = LEGEND.map(([name, c]) =>
    '<span style="--c:' + c + '">' + esc(name) + '</span>').join('');
}

function row(cells) {
  return '<td>' + cells.join('</td><td>') + '</td>';
}

function taskRows(model, t) {
  const parent = t.parent ? model.taskById(t.parent) : null;
  return [
    ['task', esc(t.label) + ' <span class="muted">#' + t.id + '</span>'],
    ['created at', esc(t.site || '?')],
    ['loop', t.loop < 0 ? '?' : t.loop],
    ['parent', t.parent ? esc((parent ? parent.label : '?') + ' #' + t.parent) : '-'],
    ['steps', t.count + (t.state ? ' (' + esc(t.state) + ' at the end)' : '')],
  ];
}

// What step i waited on, as HTML: the task it awaited, or the holder of
// the lock it wanted, is a link to that task's next step.
function waitLink(model, i) {
  const s = model.steps, text = waitText(model, i);
  if (!text) return '-';
  const r = s.reason[i];
  const other = r === 2 ? s.target[i] : r === 3 ? s.aux[i] : 0;
  if (!other || !model.taskById(other)) return esc(text);
  return '<a href="#" data-task="' + other + '" data-after="' + s.end[i] + '">' + esc(text) + '</a>';
}

// The first step of task id that ends after ns (else its last), or -1.
export function stepOfTaskAfter(model, id, ns) {
  const t = model.taskById(id);
  if (!t || !t.count) return -1;
  const end = model.steps.end;
  for (let i = t.first; i < t.first + t.count; i++) if (end[i] > ns) return i;
  return t.first + t.count - 1;
}

// The details of sel ({kind, index}) as HTML.
export function detailsHtml(model, sel) {
  if (!sel) return '<span class="muted">Click a step or a warning.</span>';
  let rows, extra = '';
  if (sel.kind === 'step') {
    const s = model.steps, i = sel.index, t = model.tasks[s.task[i]];
    rows = [['step', 'ran ' + fmtDuration(s.end[i] - s.start[i])],
      ['from', fmtDuration(s.start[i]) + ' to ' + fmtDuration(s.end[i])],
      ['stopped for', esc(reasonName(s.reason[i]))],
      ['waited on', waitLink(model, i)], ...taskRows(model, t)];
  } else {
    const w = model.warnings[sel.index];
    const frames = model.stacks[w.stack] || [];
    rows = [['warning', '<b>' + esc(w.kind) + '</b>'], ['at', fmtDuration(w.t)],
      ...(w.task >= 0 ? taskRows(model, model.tasks[w.task]) : [['loop', w.loop]])];
    extra = frames.length ? '<pre class="stack">' + frames.map((f, k) =>
      '#' + k + '  ' + esc(f)).join('\n') + '</pre>' : '<p class="muted">no stack recorded</p>';
  }
  return '<table>' + rows.map(([k, v]) => '<tr><td class="k">' + k + '</td><td>' + v + '</td></tr>').join('') +
    '</table>' + extra;
}

export function fillWarnings(model, tbody, count, onPick) {
  const ws = model.warnings;
  count.textContent = '(' + ws.length + ')';
  const n = Math.min(ws.length, TABLE_ROWS);
  let html = '';
  for (let i = 0; i < n; i++) {
    const w = ws[i];
    const who = w.task >= 0 ? model.tasks[w.task].label : 'loop ' + w.loop;
    html += '<tr data-warning="' + i + '">' + row(['<span class="num">' + fmtDuration(w.t) + '</span>',
      esc(w.kind), esc(who)]) + '</tr>';
  }
  if (ws.length > n) html += '<tr><td colspan="3" class="muted">and ' + (ws.length - n) + ' more (n/p go through all)</td></tr>';
  if (!ws.length) html = '<tr><td class="muted">none</td></tr>';
  tbody.innerHTML = html;
  tbody.onclick = e => {
    const tr = e.target.closest('tr[data-warning]');
    if (tr) onPick({ kind: 'warning', index: +tr.dataset.warning });
  };
}

export function fillSlowest(model, tbody, onPick) {
  const top = slowestSteps(model, 50), s = model.steps;
  tbody.innerHTML = top.map(i => '<tr data-step="' + i + '">' + row([
    '<span class="num">' + fmtDuration(s.end[i] - s.start[i]) + '</span>',
    esc(model.tasks[s.task[i]].label), esc(reasonName(s.reason[i])),
  ]) + '</tr>').join('') || '<tr><td class="muted">no steps</td></tr>';
  tbody.onclick = e => {
    const tr = e.target.closest('tr[data-step]');
    if (tr) onPick({ kind: 'step', index: +tr.dataset.step });
  };
}

// Keyboard shortcuts (listed in index.html's #help).
export function bindKeys(tl, search, help) {
  let warning = -1;
  const go = d => {
    const n = tl.model.warnings.length;
    if (!n) return;
    warning = (warning + d + n) % n;
    tl.select({ kind: 'warning', index: warning }, true);
  };
  window.addEventListener('keydown', e => {
    if (!help.hidden) { help.hidden = true; e.preventDefault(); return; }
    if (e.target === search) {
      if (e.key === 'Escape') { search.value = ''; tl.setFilter(''); search.blur(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const W = tl.plotW;
    const act = {
      'w': () => tl.zoom(1 / 1.5), '+': () => tl.zoom(1 / 1.5), '=': () => tl.zoom(1 / 1.5),
      's': () => tl.zoom(1.5), '-': () => tl.zoom(1.5),
      'a': () => tl.pan(W / 5, 0), 'ArrowLeft': () => tl.pan(W / 5, 0),
      'd': () => tl.pan(-W / 5, 0), 'ArrowRight': () => tl.pan(-W / 5, 0),
      'ArrowUp': () => tl.pan(0, 60), 'ArrowDown': () => tl.pan(0, -60),
      '0': () => tl.fit(), 'Home': () => tl.fit(),
      'n': () => go(1), 'p': () => go(-1),
      '/': () => search.focus(), '?': () => { help.hidden = false; },
      'Escape': () => { search.value = ''; tl.setFilter(''); tl.select(null, false); },
    }[e.key];
    if (act) { e.preventDefault(); act(); }
  });
}
