/**
 * The report page's style and script, inlined into every report (`report.ts`) so that the file
 * opens with no network. The script draws the timeline from the JSON the page embeds
 * (`<script type="application/json" id="troupe-data">`) on a canvas: one row per thread, a row of
 * the run's stages, an attempt per rectangle, coloured by expert; hover shows an attempt, the
 * wheel zooms, a drag pans, a double click resets. It marks the page ready
 * (`document.documentElement.dataset.ready`) once it has drawn, for tests and for the load-time
 * benchmark.
 */

/** The experts' colours, in the order of their first attempt (failed is red, cancelled grey). */
export const PALETTE: readonly string[] = Object.freeze([
  '#4c6ef5',
  '#12b886',
  '#fab005',
  '#7950f2',
  '#15aabf',
  '#fd7e14',
  '#40c057',
  '#845ef7',
  '#228be6',
  '#82c91e',
]);

export const PAGE_STYLE = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6575; --line: #d9dee6; --bg: #f6f7f9;
  --card: #fff; --done: #2f9e44; --failed: #d6336c; --cancelled: #868e96; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); }
header { padding: 20px 28px 8px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 10px; }
main { padding: 0 28px 40px; display: grid; gap: 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; }
.badge.done { background: var(--done); } .badge.failed { background: var(--failed); }
.badge.cancelled { background: var(--cancelled); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card b { display: block; font-size: 18px; }
.card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { height: 8px; background: #4c6ef5; border-radius: 4px; min-width: 1px; }
pre { background: var(--bg); padding: 10px; border-radius: 6px; overflow: auto; max-height: 420px;
  margin: 0; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
#timeline-wrap { position: relative; }
#timeline { width: 100%; display: block; cursor: grab; }
#tip { position: absolute; pointer-events: none; background: #1d2430; color: #fff; padding: 6px 8px;
  border-radius: 4px; font-size: 12px; white-space: pre; display: none; z-index: 2; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 8px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
.diagrams { display: grid; gap: 16px; }
.diagrams figure { margin: 0; overflow: auto; }
.diagrams img { max-width: 100%; height: auto; }
figcaption { font-weight: 600; margin-bottom: 6px; }
`;

/** Plain ES2017, no template literals: the page's script, run when the page has parsed. */
export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('troupe-data').textContent);
  var canvas = document.getElementById('timeline');
  var tip = document.getElementById('tip');
  var ROW = 20, TOP = 24, LEFT = 110, PAD = 8;
  var STATUS = ['done', 'failed', 'cancelled', 'running'];
  var palette = data.palette;
  var a = data.attempts, n = a.length / 9;
  var lanes = data.lanes.map(function () { return []; });
  for (var i = 0; i < n; i++) lanes[a[i * 9]].push(i);
  var total = Math.max(1, data.wallUs);
  // An attempt's result may come home after the run's own end (a cancelled run's stragglers).
  for (var q = 0; q < n; q++) total = Math.max(total, a[q * 9 + 1] + a[q * 9 + 2]);
  var view = { from: 0, to: total };
  var rows = lanes.length + 1;
  var height = TOP + rows * ROW + PAD;
  var ctx = canvas.getContext('2d');
  function size() {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 900;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.height = height + 'px';
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return width;
  }
  var width = size();
  function x(us) { return LEFT + (us - view.from) / (view.to - view.from) * (width - LEFT - PAD); }
  function fmt(us) { return us >= 1e6 ? (us / 1e6).toFixed(2) + ' s' : (us / 1e3).toFixed(us < 1e4 ? 2 : 1) + ' ms'; }
  function draw() {
    ctx.clearRect(0, 0, width, height);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    // Time axis: about eight ticks.
    var span = view.to - view.from, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    if (span / step > 40) step *= 5; else if (span / step > 16) step *= 2;
    ctx.fillStyle = '#5b6575'; ctx.strokeStyle = '#e9ecef';
    for (var t = Math.ceil(view.from / step) * step; t <= view.to; t += step) {
      var tx = x(t);
      ctx.beginPath(); ctx.moveTo(tx, TOP - 4); ctx.lineTo(tx, height - PAD); ctx.stroke();
      ctx.fillText(fmt(t), tx + 2, TOP - 12);
    }
    // Stages.
    ctx.fillStyle = '#1d2430'; ctx.fillText('stages', 4, TOP + ROW / 2);
    data.stages.forEach(function (s, k) {
      var x0 = Math.max(LEFT, x(s[1])), x1 = Math.min(width - PAD, x(s[2]));
      if (x1 < LEFT || x0 > width - PAD) return;
      ctx.fillStyle = k % 2 ? '#dbe4ff' : '#edf2ff';
      ctx.fillRect(x0, TOP + 2, Math.max(1, x1 - x0), ROW - 4);
      ctx.fillStyle = '#364fc7';
      if (x1 - x0 > 40) ctx.fillText(s[0], x0 + 3, TOP + ROW / 2);
    });
    // Attempts, a lane per thread.
    var drawn = 0;
    lanes.forEach(function (list, lane) {
      var y = TOP + (lane + 1) * ROW;
      ctx.fillStyle = '#1d2430';
      ctx.fillText(data.lanes[lane], 4, y + ROW / 2);
      for (var j = 0; j < list.length; j++) {
        var k = list[j] * 9, s = a[k + 1], e = s + a[k + 2];
        if (e < view.from || s > view.to) continue;
        var x0 = Math.max(LEFT, x(s)), x1 = Math.min(width - PAD, x(e));
        var status = a[k + 7];
        ctx.fillStyle = status === 1 ? '#d6336c' : status === 2 ? '#adb5bd' : palette[a[k + 5] % palette.length];
        ctx.fillRect(x0, y + 3, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), ROW - 6);
        drawn++;
      }
    });
    document.documentElement.dataset.drawn = String(drawn);
  }
  function at(px, py) {
    var lane = Math.floor((py - TOP) / ROW) - 1;
    if (lane < 0 || lane >= lanes.length || px < LEFT) return -1;
    var us = view.from + (px - LEFT) / (width - LEFT - PAD) * (view.to - view.from);
    var slack = 2 / (width - LEFT - PAD) * (view.to - view.from);
    var list = lanes[lane], lo = 0, hi = list.length - 1, best = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1, k = list[mid] * 9;
      if (a[k + 1] <= us + slack) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (best < 0) return -1;
    var k2 = list[best] * 9;
    return a[k2 + 1] + a[k2 + 2] + slack >= us ? list[best] : -1;
  }
  var drag;
  canvas.addEventListener('mousemove', function (ev) {
    var r = canvas.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
    if (drag) {
      var shift = (drag.x - px) / (width - LEFT - PAD) * (drag.to - drag.from);
      var span = drag.to - drag.from;
      view.from = Math.min(Math.max(0, drag.from + shift), total - span);
      view.to = view.from + span;
      draw();
      return;
    }
    var hit = at(px, py);
    if (hit < 0) { tip.style.display = 'none'; return; }
    var k = hit * 9, code = a[k + 8];
    tip.textContent = data.subtasks[a[k + 4]] + ' \\u00b7 ' + data.experts[a[k + 5]] + '\\n' +
      'attempt ' + a[k + 6] + ', ' + STATUS[a[k + 7]] + (code >= 0 ? ' (' + data.codes[code] + ')' : '') + '\\n' +
      'ran ' + fmt(a[k + 2]) + ' from ' + fmt(a[k + 1]) + ', waited ' + fmt(a[k + 3]);
    tip.style.display = 'block';
    tip.style.left = Math.min(px + 12, width - 260) + 'px';
    tip.style.top = (py + 14) + 'px';
  });
  canvas.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  canvas.addEventListener('mousedown', function (ev) {
    var r = canvas.getBoundingClientRect();
    drag = { x: ev.clientX - r.left, from: view.from, to: view.to };
    canvas.style.cursor = 'grabbing';
  });
  window.addEventListener('mouseup', function () { drag = undefined; canvas.style.cursor = 'grab'; });
  canvas.addEventListener('wheel', function (ev) {
    ev.preventDefault();
    var r = canvas.getBoundingClientRect(), px = ev.clientX - r.left;
    var f = Math.max(0, Math.min(1, (px - LEFT) / (width - LEFT - PAD)));
    var span = view.to - view.from, at = view.from + f * span;
    var next = Math.min(total, Math.max(total / 1e5, span * (ev.deltaY > 0 ? 1.25 : 0.8)));
    view.from = Math.max(0, Math.min(at - f * next, total - next));
    view.to = view.from + next;
    draw();
  }, { passive: false });
  canvas.addEventListener('dblclick', function () { view.from = 0; view.to = total; draw(); });
  window.addEventListener('resize', function () { width = size(); draw(); });
  draw();
  document.documentElement.dataset.ready = '1';
})();
`;
