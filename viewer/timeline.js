// timeline.js - the canvas timeline: a time axis on top, task names on the
// left, one lane per task grouped under a lane per loop (its idle time),
// steps as bars coloured by why they stopped, the wait until a task's next
// step as a thin line of the same colour, warnings as red markers.
//
// Level of detail: a lane is drawn left to right; a step at least a pixel
// wide is a bar, and where steps are narrower than a pixel the whole pixel
// column is one bar whose opacity grows with the share of that column the
// task ran (prefix sums of busy time make that one subtraction), after
// which the scan jumps by binary search to the next column.  A frame therefore costs
// at most a few binary searches per pixel column and visible lane, however
// many events the trace holds.

import { lowerBound } from './data.js';
import { reasonColour, reasonName, fmtDuration, IDLE_COLOUR, WARNING_COLOUR, niceStep, fmtTime } from './format.js';

const AXIS_H = 26;   // px: the time axis
const LABEL_W = 180; // px: lane names
const LANE_H = 20;   // px: one lane
const BAR_H = 14;    // px: a bar within its lane

export class Timeline {
  constructor(canvas, model, onSelect) {
    this.canvas = canvas;
    this.model = model;
    this.onSelect = onSelect;
    this.ctx = canvas.getContext('2d');
    this.lanes = model.lanes;
    this.t0 = 0;                 // ns at the left edge of the plot
    this.scale = 1;              // ns per px
    this.scrollY = 0;            // px the lanes are scrolled up
    this.selected = null;        // {kind: 'step'|'warning', index}
    this.pending = false;
    this.frames = 0;
    this.lastFrameMs = 0;
    this.warningsByLane = new Map();
    this.indexWarnings();
    this.resize();
    this.fit();
    this.listen();
  }

  indexWarnings() {
    const m = new Map();
    this.model.warnings.forEach((w, i) => {
      const key = w.task >= 0 ? 't' + w.task : 'l' + w.loop;
      if (!m.has(key)) m.set(key, []);
      m.get(key).push(i);
    });
    this.warningsByLane = m;
  }

  laneWarnings(lane) {
    return this.warningsByLane.get(lane.kind === 'task' ? 't' + lane.task.index : 'l' + lane.loop) || [];
  }

  // Lanes shown: those whose task matches the filter, with their loop.
  setFilter(text) {
    const q = text.trim().toLowerCase();
    if (!q) {
      this.lanes = this.model.lanes;
    } else {
      const match = l => l.kind === 'task' &&
        (l.label.toLowerCase().includes(q) || String(l.task.id) === q);
      const loops = new Set(this.model.lanes.filter(match).map(l => l.loop));
      this.lanes = this.model.lanes.filter(l => match(l) || (l.kind === 'loop' && loops.has(l.loop)));
    }
    this.scrollY = 0;
    this.draw();
  }

  get plotW() { return Math.max(10, this.width - LABEL_W); }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = Math.max(200, Math.floor(r.width));
    this.height = Math.max(100, Math.floor(r.height));
    this.canvas.width = this.width * dpr;
    this.canvas.height = this.height * dpr;
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }

  fit() {
    const from = this.model.viewFrom, span = this.model.duration - from;
    this.scale = span * 1.02 / this.plotW;
    this.t0 = from - span * 0.01;
    this.draw();
  }

  // Shows [from, to] ns, centred, at least `min` ns wide.
  show(from, to, min = 1000) {
    const span = Math.max(to - from, min);
    this.scale = span * 1.5 / this.plotW;
    this.t0 = (from + to) / 2 - this.scale * this.plotW / 2;
  }

  // Scrolls so that lane k is visible.
  reveal(k) {
    const top = k * LANE_H, h = this.height - AXIS_H;
    if (top < this.scrollY || top + LANE_H > this.scrollY + h)
      this.scrollY = Math.max(0, top - h / 3);
  }

  zoom(factor, atX) {
    const x = atX === undefined ? this.plotW / 2 : atX - LABEL_W;
    const t = this.t0 + x * this.scale;
    this.scale = Math.min(Math.max(this.scale * factor, 0.01), this.model.duration * 4 / this.plotW);
    this.t0 = t - x * this.scale;
    this.draw();
  }

  pan(dx, dy) {
    this.t0 -= dx * this.scale;
    const maxY = Math.max(0, this.lanes.length * LANE_H - (this.height - AXIS_H) + LANE_H);
    this.scrollY = Math.min(Math.max(0, this.scrollY - dy), maxY);
    this.draw();
  }

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  render() {
    const t = performance.now();
    const c = this.ctx;
    c.clearRect(0, 0, this.width, this.height);
    c.font = '12px system-ui, sans-serif';
    c.textBaseline = 'middle';
    const first = Math.floor(this.scrollY / LANE_H);
    const last = Math.min(this.lanes.length, first + Math.ceil((this.height - AXIS_H) / LANE_H) + 1);
    this.bars = new Map();
    this.marks = [];
    for (let k = first; k < last; k++) this.renderLane(k, AXIS_H + k * LANE_H - this.scrollY);
    this.flushBars();
    for (let k = first; k < last; k++) this.renderLabel(k, AXIS_H + k * LANE_H - this.scrollY);
    this.renderAxis();
    this.frames++;
    this.lastFrameMs = performance.now() - t;
    if (this.onRender) this.onRender();
  }

  renderLane(k, y) {
    const c = this.ctx, lane = this.lanes[k];
    if (lane.kind === 'loop') {
      c.fillStyle = '#f6f8fa';
      c.fillRect(0, y, this.width, LANE_H);
      const i = lane.info;
      if (i) this.renderIntervals(this.model.idle, i.idle_first, i.idle_first + i.idle_count, y, null);
    } else {
      const t = lane.task;
      this.renderIntervals(this.model.steps, t.first, t.first + t.count, y, this.model.steps.reason);
    }
  }

  renderLabel(k, y) {
    const c = this.ctx, lane = this.lanes[k];
    this.renderWarnings(lane, y);
    c.fillStyle = '#fff';
    c.fillRect(0, y, LABEL_W, LANE_H);
    c.fillStyle = lane.kind === 'loop' ? '#1f2328' : '#424a53';
    c.font = lane.kind === 'loop' ? 'bold 12px system-ui, sans-serif' : '12px system-ui, sans-serif';
    // a lane with a finding (it is drawn first of its loop) says so: ⚠
    const text = lane.kind === 'loop' ? lane.label
      : (lane.finding ? '⚠ ' : '  ') + lane.label + ' #' + lane.task.id;
    if (lane.finding) c.fillStyle = '#cf222e';
    c.fillText(text.length > 28 ? text.slice(0, 27) + '…' : text, 4, y + LANE_H / 2);
    c.fillStyle = '#eaeef2';
    c.fillRect(0, y + LANE_H - 1, this.width, 1);
  }

  // Queues a bar; bars of one colour and opacity are filled together, and
  // touching bars in a row become one (thousands of 1 px columns a frame).
  bar(colour, alpha, x, y, w, h = BAR_H) {
    const key = colour + '|' + alpha;
    let v = this.bars.get(key);
    if (!v) this.bars.set(key, v = []);
    const n = v.length;
    if (n && v[n - 4] + v[n - 3] === x && v[n - 2] === y && v[n - 1] === h) v[n - 3] += w;
    else v.push(x, w, y, h);
  }

  // The wait after step i of a task lane (until its next step, at least a
  // pixel long) as a thin line in the colour of why it stopped.
  gap(set, reasons, i, hi, y) {
    if (!reasons || i < 0 || i + 1 >= hi) return;
    const x0 = Math.max((set.end[i] - this.t0) / this.scale, 0);
    const x1 = Math.min((set.start[i + 1] - this.t0) / this.scale, this.plotW);
    if (x1 - x0 >= 1) this.bar(reasonColour(reasons[i]), 0.5, LABEL_W + x0, y + LANE_H / 2 - 1, x1 - x0, 2);
  }

  flushBars() {
    const c = this.ctx;
    for (const [key, v] of this.bars) {
      const [colour, alpha] = key.split('|');
      c.fillStyle = colour;
      c.globalAlpha = +alpha;
      c.beginPath();
      for (let i = 0; i < v.length; i += 4) c.rect(v[i], v[i + 2], v[i + 1], v[i + 3]);
      c.fill();
    }
    c.globalAlpha = 1;
    for (const [x, y, w] of this.marks) this.outline(x, y, w);
  }

  // Intervals [lo, hi) of set (sorted, not overlapping) in lane row y.
  renderIntervals(set, lo, hi, y, reasons) {
    const s = this.scale, t0 = this.t0, W = this.plotW;
    const tEnd = t0 + W * s;
    let i = lowerBound(set.end, t0, lo, hi);
    const top = y + (LANE_H - BAR_H) / 2;
    const sel = this.selected && this.selected.kind === 'step' && reasons ? this.selected.index : -1;
    if (i > lo) this.gap(set, reasons, i - 1, hi, y);
    while (i < hi && set.start[i] < tEnd) {
      const x0 = (set.start[i] - t0) / s, x1 = (set.end[i] - t0) / s;
      const colour = reasons ? reasonColour(reasons[i]) : IDLE_COLOUR;
      if (x1 - x0 >= 1) {
        const a = Math.max(x0, 0), b = Math.min(x1, W);
        this.bar(colour, 1, LABEL_W + a, top, b - a);
        if (i === sel) this.marks.push([LABEL_W + a, top, b - a]);
        this.gap(set, reasons, i, hi, y);
        i++;
        continue;
      }
      const col = Math.floor(x0);
      const colEnd = t0 + (col + 1) * s;
      const j = Math.max(i + 1, lowerBound(set.start, colEnd, i, hi));
      const share = Math.min(1, (set.busy[j] - set.busy[i]) / s);
      this.bar(colour, (Math.round(share * 3) + 3) / 6, LABEL_W + Math.max(col, 0), top, 1);
      if (sel >= i && sel < j) this.marks.push([LABEL_W + col - 1, top, 3]);
      this.gap(set, reasons, j - 1, hi, y);
      i = j;
    }
  }

  outline(x, y, w) {
    const c = this.ctx;
    c.strokeStyle = '#0969da';
    c.lineWidth = 2;
    c.strokeRect(x - 1, y - 2, Math.max(w, 2) + 2, BAR_H + 4);
  }

  renderWarnings(lane, y) {
    const c = this.ctx, ws = this.laneWarnings(lane);
    for (const i of ws) {
      const x = (this.model.warnings[i].t - this.t0) / this.scale;
      if (x < -6 || x > this.plotW + 6) continue;
      const sel = this.selected && this.selected.kind === 'warning' && this.selected.index === i;
      c.fillStyle = sel ? '#0969da' : WARNING_COLOUR;
      c.beginPath();
      c.moveTo(LABEL_W + x, y + LANE_H / 2);
      c.lineTo(LABEL_W + x - 5, y);
      c.lineTo(LABEL_W + x + 5, y);
      c.closePath();
      c.fill();
    }
  }

  renderAxis() {
    const c = this.ctx, W = this.plotW;
    c.fillStyle = '#fff';
    c.fillRect(0, 0, this.width, AXIS_H);
    c.fillStyle = '#eaeef2';
    c.fillRect(0, AXIS_H - 1, this.width, 1);
    const step = niceStep(this.scale * 100);
    c.fillStyle = '#57606a';
    c.font = '11px system-ui, sans-serif';
    const big = Math.max(Math.abs(this.t0), Math.abs(this.t0 + W * this.scale));
    for (let t = Math.ceil(this.t0 / step) * step; t < this.t0 + W * this.scale; t += step) {
      const x = LABEL_W + (t - this.t0) / this.scale;
      c.fillRect(x, AXIS_H - 6, 1, 6);
      c.fillText(fmtTime(t, step, big), x + 3, AXIS_H / 2);
    }
    c.fillStyle = '#fff';
    c.fillRect(0, 0, LABEL_W, AXIS_H);
    c.fillStyle = '#57606a';
    c.fillText(this.lanes.length + ' lanes', 4, AXIS_H / 2);
  }

  // What is under (x, y): {kind: 'warning'|'step', index} or null.
  hit(x, y) {
    const k = Math.floor((y - AXIS_H + this.scrollY) / LANE_H);
    if (y < AXIS_H || x < LABEL_W || k < 0 || k >= this.lanes.length) return null;
    const lane = this.lanes[k], t = this.t0 + (x - LABEL_W) * this.scale;
    for (const i of this.laneWarnings(lane))
      if (Math.abs((this.model.warnings[i].t - t) / this.scale) <= 6)
        return { kind: 'warning', index: i };
    if (lane.kind !== 'task') return null;
    const s = this.model.steps, lo = lane.task.first, hi = lo + lane.task.count;
    const slack = 2 * this.scale;
    let i = lowerBound(s.end, t - slack, lo, hi);
    let best = -1;
    for (; i < hi && s.start[i] <= t + slack; i++)
      if (best < 0 || s.end[i] - s.start[i] > s.end[best] - s.start[best]) best = i;
    if (best >= 0) return { kind: 'step', index: best };
    // on the wait line after a step: that step (it says what it waited on)
    const before = lowerBound(s.end, t, lo, hi) - 1;
    return before >= lo && before + 1 < hi && s.start[before + 1] > t ? { kind: 'step', index: before } : null;
  }

  // One line about what is under the pointer, for its tooltip.
  hoverText(h) {
    const m = this.model;
    if (!h) return '';
    if (h.kind === 'warning') {
      const w = m.warnings[h.index];
      return 'warning: ' + w.kind + (w.task >= 0 ? ' in ' + m.tasks[w.task].label : '') + ' at ' + fmtDuration(w.t);
    }
    const s = m.steps, i = h.index, t = m.tasks[s.task[i]];
    return t.label + ' #' + t.id + ': ran ' + fmtDuration(s.end[i] - s.start[i]) + ', then ' + reasonName(s.reason[i]);
  }

  select(sel, jump) {
    this.selected = sel;
    if (sel && jump) {
      const m = this.model;
      let from, to, laneIndex;
      if (sel.kind === 'step') {
        from = m.steps.start[sel.index];
        to = m.steps.end[sel.index];
        const task = m.steps.task[sel.index];
        laneIndex = this.lanes.findIndex(l => l.kind === 'task' && l.task.index === task);
      } else {
        const w = m.warnings[sel.index];
        from = to = w.t;
        laneIndex = this.lanes.findIndex(l => w.task >= 0 ? l.kind === 'task' && l.task.index === w.task
          : l.kind === 'loop' && l.loop === w.loop);
      }
      this.show(from, to, 1e6);
      if (laneIndex >= 0) this.reveal(laneIndex);
    }
    if (this.onSelect) this.onSelect(sel);
    this.draw();
  }

  listen() {
    const cv = this.canvas;
    let drag = null;
    cv.addEventListener('wheel', e => {
      e.preventDefault();
      if (e.shiftKey) return this.pan(0, -(e.deltaY || e.deltaX));
      if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) return this.pan(-e.deltaX, 0);
      const r = cv.getBoundingClientRect();
      this.zoom(Math.pow(1.0015, e.deltaY), e.clientX - r.left);
    }, { passive: false });
    cv.addEventListener('mousedown', e => {
      drag = { x: e.clientX, y: e.clientY, moved: false };
      cv.classList.add('dragging');
    });
    cv.addEventListener('mousemove', e => {
      if (drag) return;
      const r = cv.getBoundingClientRect();
      cv.title = this.hoverText(this.hit(e.clientX - r.left, e.clientY - r.top));
    });
    window.addEventListener('mousemove', e => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      drag.x = e.clientX;
      drag.y = e.clientY;
      if (drag.moved) this.pan(dx, dy);
    });
    window.addEventListener('mouseup', e => {
      if (!drag) return;
      const moved = drag.moved;
      drag = null;
      cv.classList.remove('dragging');
      if (moved) return;
      const r = cv.getBoundingClientRect();
      this.select(this.hit(e.clientX - r.left, e.clientY - r.top), false);
    });
    window.addEventListener('resize', () => { this.resize(); this.draw(); });
  }

  // Where lane k is on the canvas (for tests and tools): y of its middle.
  laneY(k) { return AXIS_H + k * LANE_H - this.scrollY + LANE_H / 2; }
  // x on the canvas of time t (ns since the first event).
  timeX(t) { return LABEL_W + (t - this.t0) / this.scale; }
}
