// browser_test.mjs - the viewer in a real browser: Debian's chromium driven
// by playwright-core (setup_browser.sh installs both).
//
// usage: node browser_test.mjs COSCOPE GEN_TRACE WORKDIR NODE_DIR
//
// Each check reads the page's own model (window.coscopeViewer) and what it
// drew; screenshots go to WORKDIR/screenshots as test artifacts.  Exit 0
// ok, 1 failures, 77 skipped (no browser).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [COSCOPE, GEN, WORK, NODE_DIR] = process.argv.slice(2);
const CHROMIUM = process.env.COSCOPE_CHROMIUM || '/usr/bin/chromium';
const OPEN_LIMIT_MS = 3000;
const SHOTS = path.join(WORK, 'screenshots');
const failures = [];
const timings = {};

function check(cond, what) {
  console.log((cond ? 'ok   ' : 'FAIL ') + what);
  if (!cond) failures.push(what);
}

function gen(scenario, ...extra) {
  const out = path.join(WORK, scenario + '.cst');
  execFileSync(GEN, [scenario, out, ...extra], { stdio: 'ignore' });
  return out;
}

// Starts `coscope view FILE --port 0`; resolves with {url, proc}.
function serve(file) {
  return new Promise((resolve, reject) => {
    const proc = spawn(COSCOPE, ['view', file, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error('coscope view printed no URL: ' + err)), 60000);
    proc.stdout.on('data', d => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) { clearTimeout(timer); resolve({ url: m[0], proc }); }
    });
    proc.stderr.on('data', d => { err += d; });
    proc.on('exit', code => reject(new Error('coscope view exited ' + code + ': ' + err)));
  });
}

function stop(proc) {
  return new Promise(resolve => {
    proc.removeAllListeners('exit');
    proc.on('exit', (code, sig) => resolve(code === null ? sig : code));
    proc.kill('SIGINT');
  });
}

async function open(browser, url, name) {
  const page = await browser.newPage();
  const outside = [];
  page.on('request', r => {
    const u = r.url();
    if (!u.startsWith('http://127.0.0.1') && !u.startsWith('file:') && !u.startsWith('data:')) outside.push(u);
  });
  page.on('pageerror', e => console.log('page error (' + name + '): ' + e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 60000 });
  check(outside.length === 0, name + ': nothing fetched from elsewhere ' + JSON.stringify(outside));
  return page;
}

// Lanes of the timeline as the page has them.
function lanes(page) {
  return page.evaluate(() => coscopeViewer.timeline.lanes.map((l, k) => ({
    kind: l.kind, label: l.label, k, lastEnd: l.task ? l.task.lastEnd : null,
    count: l.task ? l.task.count : 0,
  })));
}

async function testThree(browser) {
  const file = gen('three');
  const { url, proc } = await serve(file);
  const page = await open(browser, url, 'three');
  check(await page.evaluate(() => document.body.dataset.state) === 'ready', 'three: the page is ready');
  const ls = await lanes(page);
  for (const k of [1, 2, 3]) {
    const lane = ls.find(l => l.label === 'fetch-' + k);
    check(lane && Math.abs(lane.lastEnd / 1e9 - k) < 0.01,
      'three: lane fetch-' + k + ' has bars ending at ' + k + ' s (' + (lane && lane.lastEnd / 1e9) + ')');
  }
  check(ls.filter(l => l.label.startsWith('fetch-')).length === 3, 'three: three fetch lanes');
  check(ls[0].kind === 'loop', 'three: lanes grouped under loop 0');
  // What is drawn: just before each lane's last bar ends there is colour,
  // just after there is none (the page is zoomed around each end in turn).
  for (const k of [1, 2, 3]) {
    const px = await page.evaluate(k => {
      const tl = coscopeViewer.timeline;
      const lane = tl.lanes.findIndex(l => l.label === 'fetch-' + k);
      const end = tl.lanes[lane].task.lastEnd;
      tl.show(end - 60000, end + 60000);
      tl.render();
      const y = tl.laneY(lane), dpr = window.devicePixelRatio || 1;
      const at = x => Array.from(tl.ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data);
      return { before: at(tl.timeX(end) - 3), after: at(tl.timeX(end) + 3) };
    }, k);
    const white = p => p[3] === 0 || (p[0] > 240 && p[1] > 240 && p[2] > 240);
    check(!white(px.before) && white(px.after), 'three: drawn bar of fetch-' + k + ' ends at its time ' + JSON.stringify(px));
  }
  await page.evaluate(() => coscopeViewer.timeline.fit());
  await page.waitForTimeout(100);
  await page.screenshot({ path: path.join(SHOTS, 'three.png') });

  // click the warning marker on fetch-2's lane: its stack shows
  const at = await page.evaluate(() => {
    const tl = coscopeViewer.timeline, w = coscopeViewer.model.warnings[0];
    tl.show(w.t - 1e6, w.t + 1e6);
    tl.render();
    const lane = tl.lanes.findIndex(l => l.kind === 'task' && l.task.index === w.task);
    const r = tl.canvas.getBoundingClientRect();
    return { x: r.left + tl.timeX(w.t), y: r.top + tl.laneY(lane) };
  });
  await page.mouse.click(at.x, at.y);
  const details = await page.textContent('#details-body');
  check(/slow/.test(details) && /fetch-2/.test(details) && /#0\s+0x000000401000/.test(details) &&
    /#3\s+0x0000004010c0/.test(details), 'three: clicking the warning shows its stack: ' + details.slice(0, 200));
  await page.screenshot({ path: path.join(SHOTS, 'three-warning.png') });

  // a row of the slowest-steps table jumps to its step
  await page.click('#slowest tbody tr:first-child');
  const d2 = await page.textContent('#details-body');
  check(/stopped for/.test(d2) && /main/.test(d2), 'three: a slowest-step row selects the step: ' + d2.slice(0, 120));

  // search filters lanes
  await page.fill('#search', 'fetch-2');
  await page.waitForTimeout(50);
  const shown = await lanes(page);
  check(shown.filter(l => l.kind === 'task').map(l => l.label).join() === 'fetch-2',
    'three: searching fetch-2 leaves one task lane: ' + shown.map(l => l.label).join());
  await page.screenshot({ path: path.join(SHOTS, 'three-search.png') });
  await page.keyboard.press('Escape');
  check((await lanes(page)).length === ls.length, 'three: Esc clears the filter');

  // the wheel zooms around the pointer, a drag pans, hovering names the step
  const view = () => page.evaluate(() => ({ t0: coscopeViewer.timeline.t0, scale: coscopeViewer.timeline.scale }));
  await page.evaluate(() => coscopeViewer.timeline.fit());
  const box = await page.locator('#timeline').boundingBox();
  const v0 = await view();
  await page.mouse.move(box.x + 600, box.y + 150);
  await page.mouse.wheel(0, -400);
  await page.waitForTimeout(50);
  const v1 = await view();
  check(v1.scale < v0.scale, 'three: the wheel zooms in (' + v0.scale.toFixed(0) + ' -> ' + v1.scale.toFixed(0) + ' ns/px)');
  await page.mouse.down();
  await page.mouse.move(box.x + 400, box.y + 150, { steps: 5 });
  await page.mouse.up();
  const v2 = await view();
  check(Math.abs((v2.t0 - v1.t0) / v1.scale - 200) < 2, 'three: a 200 px drag pans by 200 px of time');
  const tip = await page.evaluate(() => {
    const tl = coscopeViewer.timeline, k = tl.lanes.findIndex(l => l.label === 'fetch-3');
    const end = tl.lanes[k].task.lastEnd;
    tl.show(end - 60000, end + 60000); tl.render();
    const r = tl.canvas.getBoundingClientRect();
    return { x: r.left + tl.timeX(end - 10000), y: r.top + tl.laneY(k) };
  });
  await page.mouse.move(tip.x, tip.y);
  const title = await page.getAttribute('#timeline', 'title');
  check(/^fetch-3 #4: ran 25\.0µs, then done$/.test(title), 'three: hovering a bar names it: ' + title);
  // the line between two steps is the wait: clicking it shows what for
  const wait = await page.evaluate(() => {
    const tl = coscopeViewer.timeline, k = tl.lanes.findIndex(l => l.label === 'fetch-1');
    tl.fit(); tl.render();
    const r = tl.canvas.getBoundingClientRect();
    return { x: r.left + tl.timeX(0.5e9), y: r.top + tl.laneY(k) };
  });
  await page.mouse.click(wait.x, wait.y);
  const wd = await page.textContent('#details-body');
  check(/stopped forsleep/.test(wd) && /deadline at \+1\.0/.test(wd), 'three: clicking the wait line of fetch-1 shows its timer: ' + wd.slice(0, 120));

  // keyboard: zoom in with w, fit with 0
  const s0 = await page.evaluate(() => coscopeViewer.timeline.scale);
  await page.focus('#timeline');
  await page.keyboard.press('w');
  const s1 = await page.evaluate(() => coscopeViewer.timeline.scale);
  check(s1 < s0, 'three: w zooms in');
  await page.keyboard.press('n');
  check(/#0\s+0x/.test(await page.textContent('#details-body')), 'three: n jumps to a warning');
  await page.close();
  check(await stop(proc) === 0, 'three: coscope view ends with exit 0 on Ctrl-C');
}

async function testHtml(browser) {
  const file = gen('mixed');
  const html = path.join(WORK, 'mixed.html');
  execFileSync(COSCOPE, ['view', file, '--html', html]);
  const page = await open(browser, 'file://' + html, 'mixed.html');
  const st = await page.evaluate(() => ({
    state: document.body.dataset.state, tasks: coscopeViewer.model.tasks.length,
    loops: coscopeViewer.timeline.lanes.filter(l => l.kind === 'loop').length,
    warnings: document.querySelectorAll('#warnings tbody tr[data-warning]').length,
  }));
  check(st.state === 'ready' && st.tasks === 4 && st.loops === 2 && st.warnings === 3,
    'mixed.html: the offline page shows 4 tasks, 2 loops, 3 warnings ' + JSON.stringify(st));
  await page.click('#warnings tbody tr[data-warning="0"]');
  check(/#0\s+0x000000402000/.test(await page.textContent('#details-body')), 'mixed.html: a warning row shows its stack');
  // "waited on ... held by task 2": the link goes to that task's next step
  await page.evaluate(() => {
    const m = coscopeViewer.model, main = m.tasks.find(t => t.label === 'main');
    let i = main.first;
    while (m.steps.reason[i] !== 3) i++;
    coscopeViewer.timeline.select({ kind: 'step', index: i }, true);
  });
  const link = await page.textContent('#details-body a[data-task]');
  await page.click('#details-body a[data-task]');
  const next = await page.textContent('#details-body');
  check(/held by task 2/.test(link) && /worker "b"\s*#2/.test(next),
    'mixed.html: the lock holder link shows its step: ' + link + ' -> ' + next.slice(0, 120));
  const title = await page.textContent('#title');
  check(/flight recorder dump/.test(title), 'mixed.html: the title says what the file is: ' + title);
  await page.screenshot({ path: path.join(SHOTS, 'mixed-offline.png') });
  await page.close();

  // data the viewer cannot read: a clear message, not a blank page
  const bad = fs.readFileSync(html, 'utf8').replace(
    /(<script type="application\/octet-stream" id="cs-trace-data">)[^<]*/, '$1\nQ1NWSUVXMDEAAAAA');
  const badPath = path.join(WORK, 'bad.html');
  fs.writeFileSync(badPath, bad);
  const p2 = await open(browser, 'file://' + badPath, 'bad.html');
  const err = await p2.evaluate(() => ({ state: document.body.dataset.state, text: document.getElementById('error').textContent }));
  check(err.state === 'error' && /not trace data the viewer can read/.test(err.text),
    'bad.html: the viewer says it cannot read the data: ' + JSON.stringify(err));
  await p2.screenshot({ path: path.join(SHOTS, 'bad-data.png') });
  await p2.close();

  // the bare viewer opened from disk cannot load its modules: it says so
  const dir = process.env.COSCOPE_VIEWER_DIR;
  if (dir) {
    const p3 = await open(browser, 'file://' + path.join(dir, 'index.html'), 'index.html from disk');
    const e3 = await p3.evaluate(() => ({ state: document.body.dataset.state, text: document.getElementById('error').textContent }));
    check(e3.state === 'error' && /coscope view FILE/.test(e3.text), 'index.html from disk explains itself: ' + JSON.stringify(e3));
    await p3.close();
  }
}

// 600 lanes, one 83 ms step and one blocking-call warning far down: the
// view opens with both in sight, their lanes first and marked (issue 11,
// point 9), without a click.
async function testMany(browser) {
  const file = gen('many');
  const html = path.join(WORK, 'many.html');
  execFileSync(COSCOPE, ['view', file, '--html', html]);
  const page = await open(browser, 'file://' + html, 'many.html');
  const st = await page.evaluate(() => {
    const tl = coscopeViewer.timeline, m = coscopeViewer.model;
    const rows = Math.floor((tl.height - 26) / 20);  // AXIS_H, LANE_H
    const first = Math.floor(tl.scrollY / 20);
    const seen = tl.lanes.slice(first, first + rows);
    const lane = name => seen.find(l => l.kind === 'task' && l.label === name);
    const slow = m.tasks.find(t => t.label === 'slowpoke');
    let longest = 0, at = 0;
    for (let i = slow.first; i < slow.first + slow.count; i++)
      if (m.steps.end[i] - m.steps.start[i] > longest) { longest = m.steps.end[i] - m.steps.start[i]; at = m.steps.start[i]; }
    const from = tl.t0, to = tl.t0 + tl.scale * tl.plotW;
    const marked = tl.lanes.filter(l => l.finding).map(l => l.label);
    return { lanes: tl.lanes.length, rows, marked, slow: lane('slowpoke') ? lane('slowpoke').finding : null,
      blocker: lane('blocker') ? lane('blocker').finding : null, longest,
      inTime: at >= from && at + longest <= to, state: document.body.dataset.state };
  });
  check(st.state === 'ready' && st.lanes === 601, 'many: 600 task lanes and a loop lane ' + JSON.stringify(st));
  check(st.slow === 'slow step' && st.longest >= 83e6 && st.inTime,
    'many: the 83 ms step\'s lane is in sight on opening, marked, the step in the time range ' + JSON.stringify(st));
  check(st.blocker === 'blocking', 'many: the blocking warning\'s lane is in sight on opening, marked ' + JSON.stringify(st));
  check(st.marked.join() === 'slowpoke,blocker', 'many: only the lanes with findings are marked ' + JSON.stringify(st.marked));
  await page.screenshot({ path: path.join(SHOTS, 'many-findings-first.png') });
  await page.close();
}

async function testBig(browser) {
  const file = gen('big', '1000000');
  const { url, proc } = await serve(file);
  const page = await open(browser, url, 'big');
  const t = await page.evaluate(() => ({
    ...coscopeViewer.timings, steps: coscopeViewer.model.steps.length, events: coscopeViewer.model.events,
    state: document.body.dataset.state,
  }));
  timings.big = t;
  check(t.state === 'ready' && t.events >= 999000, 'big: 1M events open (' + t.events + ' events, ' + t.steps + ' steps)');
  check(t.firstRender <= OPEN_LIMIT_MS, 'big: first frame at ' + Math.round(t.firstRender) +
    ' ms after navigation (data ' + Math.round(t.loaded) + ' ms, parsed ' + Math.round(t.parsed) + ' ms), limit ' + OPEN_LIMIT_MS);
  // pan and zoom stay smooth: the slowest of a series of frames
  const frames = await page.evaluate(() => {
    const tl = coscopeViewer.timeline, ms = [];
    tl.fit();
    for (let i = 0; i < 10; i++) { tl.zoom(0.7); tl.render(); ms.push(tl.lastFrameMs); }
    for (let i = 0; i < 10; i++) { tl.pan(-100, -20); tl.render(); ms.push(tl.lastFrameMs); }
    tl.fit(); tl.render(); ms.push(tl.lastFrameMs);
    return ms;
  });
  timings.frames = frames;
  // The median, not the slowest: a loaded machine (ctest -j) stalls a frame
  // now and then whatever the viewer does.
  const sorted = [...frames].sort((a, b) => a - b), median = sorted[sorted.length >> 1];
  check(median < 50, 'big: zoom/pan frames take ' + median.toFixed(1) + ' ms (median of 21; slowest ' +
    sorted[sorted.length - 1].toFixed(1) + ' ms)');
  await page.waitForTimeout(100);
  await page.screenshot({ path: path.join(SHOTS, 'big.png') });
  await page.close();
  await stop(proc);

  // a part of it, as for a trace too long for the browser
  const part = path.join(WORK, 'big-part.html');
  execFileSync(COSCOPE, ['view', file, '--from', '1', '--max-steps', '100000', '--html', part], { stdio: 'ignore' });
  const p1 = await open(browser, 'file://' + part, 'big-part.html');
  const w = await p1.evaluate(() => {
    const m = coscopeViewer.model, note = document.getElementById('note');
    let minStart = Infinity;
    for (let i = 0; i < m.steps.length; i++) minStart = Math.min(minStart, m.steps.start[i]);
    return { steps: m.steps.length, minStart, note: note.hidden ? '' : note.textContent };
  });
  check(w.steps <= 100000 && w.steps > 90000 && w.minStart >= 1e9 && /^Showing \d+ of the \d+ steps/.test(w.note) &&
    /--from /.test(w.note), 'big-part.html: a window of the trace with a note saying which: ' + JSON.stringify(w));
  await p1.screenshot({ path: path.join(SHOTS, 'big-part.png') });
  await p1.close();

  const html = path.join(WORK, 'big.html');
  execFileSync(COSCOPE, ['view', file, '--html', html]);
  const p2 = await open(browser, 'file://' + html, 'big.html');
  const t2 = await p2.evaluate(() => coscopeViewer.timings);
  timings.bigHtml = t2;
  check(t2.firstRender <= OPEN_LIMIT_MS, 'big.html: the offline page draws its first frame at ' + Math.round(t2.firstRender) + ' ms');
  await p2.close();
}

// Clicks warning w (index) of the open page and returns the details text.
async function clickWarning(page, w) {
  const at = await page.evaluate(i => {
    const tl = coscopeViewer.timeline, w = coscopeViewer.model.warnings[i];
    tl.show(w.t - 1e6, w.t + 1e6);
    const lane = tl.lanes.findIndex(l => w.task >= 0 ? l.kind === 'task' && l.task.index === w.task
      : l.kind === 'loop' && l.loop === w.loop);
    tl.reveal(lane);
    tl.render();
    const r = tl.canvas.getBoundingClientRect();
    return { x: r.left + tl.timeX(w.t), y: r.top + tl.laneY(lane) };
  }, w);
  await page.mouse.click(at.x, at.y);
  return page.textContent('#details-body');
}

// Records a real program with COSCOPE_RECORD; null if it wrote no file.
// A program that crashes on purpose leaves its segment behind: removed.
function record(exe, args, name) {
  const out = path.join(WORK, name + '.cst');
  fs.rmSync(out, { force: true });
  const r = spawnSync(exe, args, { env: { ...process.env, COSCOPE_RECORD: out }, stdio: 'ignore', timeout: 20000 });
  if (r.pid) fs.rmSync('/dev/shm/coscope.' + r.pid, { force: true });
  return fs.existsSync(out) && fs.statSync(out).size > 0 ? out : null;
}

// examples/fetch_data and examples/buggy, recorded: skipped while the
// runtime writes no trace file (or buggy's warnings carry no stack).
async function testReal(browser) {
  const fetch = process.env.COSCOPE_FETCH_DATA, buggy = process.env.COSCOPE_BUGGY;
  const file = fetch && record(fetch, [], 'fetch_data');
  if (!file) {
    console.log('skip fetch_data: no trace file recorded (runtime not wired to libtrace in this build)');
    return;
  }
  const { url, proc } = await serve(file);
  const page = await open(browser, url, 'fetch_data');
  const ends = (await lanes(page)).filter(l => l.label === 'fetch_data').map(l => l.lastEnd / 1e9).sort();
  check(ends.length === 3 && ends.every((e, k) => Math.abs(e - (k + 1)) < 0.25),
    'fetch_data: three task lanes whose bars end at about 1, 2, 3 s: ' + JSON.stringify(ends));
  await page.screenshot({ path: path.join(SHOTS, 'fetch_data.png') });
  await page.close();
  await stop(proc);
  if (!buggy) return;
  let usage = '';
  try { execFileSync(buggy, [], { stdio: 'pipe' }); } catch (e) { usage = String(e.stderr); }
  const m = usage.match(/modes:(.*)/) || usage.match(/usage: buggy (\S+)/);
  const modes = m ? m[1].trim().split(/[\s|]+/) : [];
  for (const mode of modes) {
    const f = record(buggy, [mode], 'buggy-' + mode);
    if (!f) continue;
    const html = path.join(WORK, 'buggy-' + mode + '.html');
    try { execFileSync(COSCOPE, ['view', f, '--html', html, '--partial'], { stdio: 'ignore' }); } catch (e) { continue; }
    const p = await open(browser, 'file://' + html, 'buggy ' + mode);
    const w = await p.evaluate(() => coscopeViewer.model ? coscopeViewer.model.warnings.findIndex(w =>
      (coscopeViewer.model.stacks[w.stack] || []).length > 0) : -1);
    if (w >= 0) {
      const details = await clickWarning(p, w);
      // The writer has exited: the frame is named from the file's module
      // table, not left as an address ("??") or "buggy+0x..." (a binary
      // that no longer matches).
      check(/#0\s+0x[0-9a-f]+ [A-Za-z_][\w.]*( \(|$)/m.test(details),
        'buggy ' + mode + ': clicking its warning shows the stack, its first frame named: ' + details.slice(0, 160));
      await p.screenshot({ path: path.join(SHOTS, 'buggy-' + mode + '.png') });
      await p.close();
      return;
    }
    await p.close();
  }
  console.log('skip buggy: no mode recorded a warning with a stack (' + modes.join(' ') + ')');
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const require = createRequire(path.join(NODE_DIR, 'noop.js'));
  const { chromium } = require('playwright-core');
  const dataDir = fs.mkdtempSync(path.join(WORK, 'chromium-profile-'));
  // A persistent context is how playwright takes a fresh --user-data-dir.
  const browser = await chromium.launchPersistentContext(dataDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1400, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    for (const t of [testThree, testHtml, testMany, testReal, testBig]) {
      try { await t(browser); } catch (e) { check(false, t.name + ' threw: ' + (e.stack || e)); }
    }
  } finally {
    await browser.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  fs.writeFileSync(path.join(WORK, 'timings.json'), JSON.stringify(timings, null, 1));
  console.log('screenshots in ' + SHOTS + '; timings in ' + path.join(WORK, 'timings.json'));
  if (failures.length) {
    console.log(failures.length + ' failure(s)');
    process.exit(1);
  }
}

main().catch(e => { console.log('FAIL ' + (e.stack || e)); process.exit(1); });
