// main.js - the viewer's entry point: gets the trace data (inline in the
// page as base64, or /trace.bin from `coscope view`), builds the model and
// the timeline, and reports anything it cannot read in plain words.
//
// For tests and tools, window.coscopeViewer holds the model, the timeline
// and timings (ms since navigation start): data loaded, parsed, first
// frame drawn; <body data-state> is loading, ready or error.

import { parseTrace, TraceError } from './data.js';
import { Timeline } from './timeline.js';
import { showLegend, detailsHtml, fillWarnings, fillSlowest, bindKeys, stepOfTaskAfter } from './panels.js';
import { fmtDuration } from './format.js';

const $ = id => document.getElementById(id);

function showError(msg) {
  const el = $('error');
  el.textContent = msg;
  el.hidden = false;
  document.body.dataset.state = 'error';
  $('title').textContent = 'cannot show this trace';
}

async function loadData() {
  const inline = $('cs-trace-data');
  if (inline) {
    const bin = atob(inline.textContent.replace(/\s+/g, ''));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }
  const r = await fetch('trace.bin', { cache: 'no-store' });
  if (!r.ok) throw new TraceError('The trace could not be loaded: the server said ' + r.status + ' ' + r.statusText + '.');
  return r.arrayBuffer();
}

function describe(m) {
  const parts = [m.meta.exe + ' (pid ' + m.meta.pid + ')', fmtDuration(m.duration),
    m.tasks.length + ' tasks', m.steps.length + ' steps', m.events + ' events'];
  if (m.meta.kind && m.meta.kind !== 'recording') parts.push(m.meta.kind);
  if (m.meta.lost) parts.push(m.meta.lost + ' lost');
  if (!m.meta.complete) parts.push('no end marker (cut short)');
  return parts.join(' · ');
}

async function start() {
  const api = window.coscopeViewer = { timings: {} };
  let buf;
  try {
    buf = await loadData();
  } catch (e) {
    return showError(e instanceof TraceError ? e.message
      : 'The trace data could not be decoded: ' + e.message);
  }
  api.timings.loaded = performance.now();
  let model;
  try {
    model = parseTrace(buf);
  } catch (e) {
    return showError(e instanceof TraceError ? e.message : 'The trace data could not be read: ' + e.message);
  }
  api.timings.parsed = performance.now();
  api.model = model;
  $('title').textContent = describe(model);
  $('title').title = model.meta.source;
  document.title = 'coscope · ' + model.meta.source;
  showLegend($('legend'));
  const details = $('details-body');
  const tl = new Timeline($('timeline'), model, sel => { details.innerHTML = detailsHtml(model, sel); });
  api.timeline = tl;
  // "waited on task N": go to what that task did next
  details.addEventListener('click', e => {
    const a = e.target.closest('a[data-task]');
    if (!a) return;
    e.preventDefault();
    const step = stepOfTaskAfter(model, +a.dataset.task, +a.dataset.after);
    if (step >= 0) tl.select({ kind: 'step', index: step }, true);
  });
  const pick = sel => tl.select(sel, true);
  fillWarnings(model, document.querySelector('#warnings tbody'), $('warn-count'), pick);
  fillSlowest(model, document.querySelector('#slowest tbody'), pick);
  const search = $('search');
  search.addEventListener('input', () => tl.setFilter(search.value));
  $('fit').onclick = () => tl.fit();
  $('help-button').onclick = () => { $('help').hidden = false; };
  bindKeys(tl, search, $('help'));
  const w = model.window;
  if (w) {
    $('note').textContent = 'Showing ' + w.steps_shown + ' of the ' + w.steps_total + ' steps, from ' +
      fmtDuration(w.from_ns) + ' to ' + fmtDuration(w.to_ns) + ' (too many for one page). ' +
      'For what follows: coscope view ' + model.meta.source + ' --from ' + (w.to_ns / 1e9).toFixed(6);
    $('note').hidden = false;
  } else if (!model.steps.length && !model.warnings.length) {
    $('note').textContent = 'This trace holds no steps and no warnings.';
    $('note').hidden = false;
  }
  tl.onRender = () => {
    if (api.timings.firstRender) return;
    api.timings.firstRender = performance.now();
    document.body.dataset.state = 'ready';
    document.body.dataset.firstRenderMs = api.timings.firstRender.toFixed(0);
  };
  tl.canvas.focus();
}

window.addEventListener('error', e => {
  if (document.body.dataset.state !== 'ready') showError('The viewer failed: ' + e.message);
});
start();
