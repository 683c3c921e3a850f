// lstmlens lens page: inlined into one self-contained HTML file by lens/html.py.
// Reads the JSON in <script id="lens-data">; arrays are (T, H) row-major, stored as
// little-endian int16 in base64 with value = int / scale. No network, no libraries.
// The views of cellview.js, saturation.js and pattern.js (inlined before this file) push a
// start function onto window.lensViews; each gets the api object built at the end.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("lens-data").textContent);
  const T = data.steps;
  const H = data.hidden;
  const SIGMOID = new Set(["input", "forget", "output", "reset", "update"]);
  const WORDS = data.kind === "lstm"
    ? { input: "learn", forget: "forget", candidate: "new memory", cell: "remember",
        output: "use", hidden: "short-term memory" }
    : {};
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"];
  const $ = (id) => document.getElementById(id);
  const ui = { layer: $("layer"), direction: $("direction"), gate: $("gate"), unit: $("unit") };
  const tip = $("tip");
  const cache = new Map();

  function values(layer, direction, gate) {
    const key = layer + "/" + direction + "/" + gate;
    if (cache.has(key)) return cache.get(key);
    const entry = data.arrays[key];
    const bin = atob(entry.b64);
    const out = new Float32Array(bin.length / 2);
    for (let k = 0; k < out.length; k++) {
      let v = bin.charCodeAt(2 * k) | (bin.charCodeAt(2 * k + 1) << 8);
      if (v >= 32768) v -= 65536;
      out[k] = v / entry.scale;
    }
    out.width = entry.width; // units of this array: H, or the projection size P for h
    cache.set(key, out);
    return out;
  }

  // the value of one unit at step t, NaN where that array has no such unit (h with proj_size)
  function at(a, t, unit) {
    return unit < a.width ? a[t * a.width + unit] : NaN;
  }

  function column(layer, direction, gate, unit) {
    const a = values(layer, direction, gate);
    const col = new Float32Array(T);
    for (let t = 0; t < T; t++) col[t] = at(a, t, unit);
    return col;
  }

  // Sigmoid gates: white (0) -> blue (1) on [0, 1]. Others: red (negative) - white - blue
  // (positive) on [-m, m], m = max(1, max |v| of this unit), so that |v| <= 1 reads as itself.
  function colourScale(gate, col) {
    if (SIGMOID.has(gate)) {
      const paint = (v) => {
        const x = Math.min(Math.max(v, 0), 1);
        return rgb(255 - 175 * x, 255 - 105 * x, 255 - 25 * x);
      };
      return { paint: paint, lo: 0, hi: 1 };
    }
    let m = 1;
    for (let t = 0; t < col.length; t++) if (!Number.isNaN(col[t])) m = Math.max(m, Math.abs(col[t]));
    const paint = (v) => {
      const x = Math.min(Math.max(v / m, -1), 1);
      return x >= 0 ? rgb(255 - 155 * x, 255 - 95 * x, 255 - 20 * x)
        : rgb(255 + 20 * x, 255 + 145 * x, 255 + 155 * x);
    };
    return { paint: paint, lo: -m, hi: m };
  }
  const rgb = (r, g, b) => "rgb(" + Math.round(r) + ", " + Math.round(g) + ", " + Math.round(b) + ")";
  const fmt = (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : (+v).toFixed(3));
  const label = (g) => (WORDS[g] ? g + " (" + WORDS[g] + ")" : g);

  function fillSelect(sel, items) {
    sel.textContent = "";
    for (const [value, text] of items) {
      const o = document.createElement("option");
      o.value = String(value);
      o.textContent = text;
      sel.appendChild(o);
    }
  }

  function current() {
    const units = Array.from(ui.unit.selectedOptions, (o) => +o.value);
    return { layer: +ui.layer.value, direction: +ui.direction.value, gate: ui.gate.value,
             unit: units.length ? units[0] : 0, units: units.length ? units : [0] };
  }

  function row(table, cells, numeric) {
    const tr = document.createElement("tr");
    cells.forEach((c, k) => {
      const td = document.createElement(k === 0 ? "th" : "td");
      td.textContent = c;
      if (k > 0 && numeric) td.className = "num";
      tr.appendChild(td);
    });
    table.appendChild(tr);
  }

  function unitCard(s) {
    const card = $("unit-card");
    card.textContent = "";
    const ld = s.layer + "/" + s.direction;
    const stats = data.stats[ld];
    const head = document.createElement("p");
    head.textContent = "layer " + s.layer + (data.directions > 1 ? (s.direction ? ", reverse" : ", forward") : "")
      + ", unit " + s.unit;
    card.appendChild(head);
    const table = document.createElement("table");
    row(table, ["gate", "mean", "shut <0.1", "open >0.9"], false);
    for (const g of data.gates) {
      const sat = stats.saturation[g];
      row(table, [label(g), fmt(stats.mean[g][s.unit]),
        sat ? (100 * sat.left[s.unit]).toFixed(0) + "%" : "", sat ? (100 * sat.right[s.unit]).toFixed(0) + "%" : ""], true);
    }
    card.appendChild(table);
    const notes = [];
    if (stats.halfLife) {
      const hl = stats.halfLife[s.unit];
      notes.push("memory half-life: " + (hl === null ? "never fades (f = 1)" : hl.toFixed(1) + " steps"));
    }
    for (const g of ["cell", "hidden"]) {
      const corr = data.corr[ld + "/" + g];
      if (!corr) continue;
      for (const name of Object.keys(corr)) {
        const r = corr[name][s.unit];
        if (r !== null) notes.push(g + " vs " + name.replace(/_/g, " ") + ": r = " + fmt(r));
      }
    }
    for (const n of notes) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = n;
      card.appendChild(p);
    }
  }

  function showTip(ev, title, rows) {
    tip.textContent = "";
    const head = document.createElement("div");
    head.className = "head";
    head.textContent = title;
    tip.appendChild(head);
    const table = document.createElement("table");
    for (const r of rows) row(table, r, true);
    tip.appendChild(table);
    tip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(ev.clientY + 16, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = Math.max(x, 0) + "px";
    tip.style.top = Math.max(y, 0) + "px";
  }

  function gateRows(t, s, unit) {
    return data.gates.map((g) => [label(g), fmt(at(values(s.layer, s.direction, g), t, unit))]);
  }

  // ---- text mode: one span per step, coloured by the chosen unit ----
  const spans = [];
  function buildText() {
    const box = $("text");
    data.tokens.forEach((tok, t) => {
      const span = document.createElement("span");
      span.dataset.step = String(t);
      if (tok === "\n") { span.textContent = "\u21b5\n"; span.className = "nl"; } else span.textContent = tok;
      spans.push(span);
      box.appendChild(span);
    });
    box.addEventListener("mouseover", (ev) => {
      const span = ev.target.closest("span[data-step]");
      if (!span) return;
      const t = +span.dataset.step;
      const s = current();
      showTip(ev, "step " + t + ": " + JSON.stringify(data.tokens[t]) + ", unit " + s.unit, gateRows(t, s, s.unit));
    });
    box.addEventListener("mouseleave", () => { tip.hidden = true; });
    box.addEventListener("click", (ev) => {
      const span = ev.target.closest("span[data-step]");
      if (span && window.getSelection().isCollapsed) api.setStep(+span.dataset.step);
    });
  }

  // the step the cell view shows, outlined in the text / marked by the series cursor
  let marked = null;
  function markStep(t) {
    if (data.mode === "text") {
      if (marked !== null && spans[marked]) spans[marked].classList.remove("current");
      marked = t;
      spans[t].classList.add("current");
      const box = $("text");
      const top = spans[t].offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 20) box.scrollTop = top - box.clientHeight / 2;
    } else {
      const x = xOf(t);
      let mark = svg.querySelector("#step-mark");
      if (!mark) mark = el("line", { id: "step-mark", y1: 0, stroke: "#d62728", "stroke-width": 1.5 }, svg);
      mark.setAttribute("y2", svg.viewBox.baseVal.height);
      mark.setAttribute("x1", x);
      mark.setAttribute("x2", x);
    }
  }

  function renderText(s) {
    const col = column(s.layer, s.direction, s.gate, s.unit);
    const scale = colourScale(s.gate, col);
    for (let t = 0; t < T; t++) {
      spans[t].style.backgroundColor = api.shade ? api.shade(t) : Number.isNaN(col[t]) ? "" : scale.paint(col[t]);
    }
    const stops = [];
    for (let k = 0; k <= 10; k++) stops.push(scale.paint(scale.lo + (k * (scale.hi - scale.lo)) / 10));
    $("legend-bar").style.background = "linear-gradient(to right, " + stops.join(", ") + ")";
    $("legend-lo").textContent = scale.lo.toFixed(2);
    $("legend-hi").textContent = scale.hi.toFixed(2);
  }

  // ---- series mode: the series on top, the gates of the chosen units under it (SVG) ----
  const svg = document.querySelector("#chart svg");
  const NS = svg ? svg.namespaceURI : null;
  const W = 960, LEFT = 140, RIGHT = 12, TOP_H = 150, GATE_H = 74, GAP = 10;
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  const xOf = (t) => LEFT + (T > 1 ? (t * (W - LEFT - RIGHT)) / (T - 1) : 0);

  function line(parent, ys, y0, h, colour, lo, hi) {
    const span = hi - lo || 1;
    const pts = [];
    for (let t = 0; t < ys.length; t++) if (!Number.isNaN(ys[t])) pts.push(xOf(t).toFixed(1) + "," + (y0 + h - ((ys[t] - lo) / span) * h).toFixed(1));
    if (pts.length) el("polyline", { points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 1.4 }, parent);
  }

  function panel(y0, h, name, lo, hi) {
    el("rect", { x: LEFT, y: y0, width: W - LEFT - RIGHT, height: h, fill: "#fafbfc", stroke: "#d9dee6" }, svg);
    const lines = Array.isArray(name) ? name : [name];
    lines.forEach((part, k) => {
      const y = y0 + h / 2 + 4 + (k - (lines.length - 1) / 2) * 14;
      const text = el("text", { x: LEFT - 8, y: y, "text-anchor": "end", "font-size": k ? 11 : 12,
                                fill: k ? "#5b6575" : "#1d2430" }, svg);
      text.textContent = k ? "(" + part + ")" : part;
    });
    for (const [v, yy] of [[hi, y0 + 10], [lo, y0 + h - 2]]) {
      const tick = el("text", { x: LEFT - 8, y: yy, "text-anchor": "end", "font-size": 9, fill: "#5b6575" }, svg);
      tick.textContent = Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
    }
  }

  function renderSeries(s) {
    svg.textContent = "";
    const height = TOP_H + GAP + data.gates.length * (GATE_H + GAP);
    svg.setAttribute("viewBox", "0 0 " + W + " " + height);
    let lo = Infinity, hi = -Infinity;
    for (const v of data.series) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    panel(0, TOP_H, data.seriesName, lo, hi);
    line(svg, data.series, 0, TOP_H, "#1d2430", lo, hi);
    data.gates.forEach((g, k) => {
      const y0 = TOP_H + GAP + k * (GATE_H + GAP);
      const cols = s.units.map((u) => column(s.layer, s.direction, g, u));
      let glo = SIGMOID.has(g) ? 0 : Infinity, ghi = SIGMOID.has(g) ? 1 : -Infinity;
      if (!SIGMOID.has(g)) {
        for (const c of cols) for (const v of c) if (!Number.isNaN(v)) { glo = Math.min(glo, v); ghi = Math.max(ghi, v); }
        if (!(glo <= ghi)) { glo = -1; ghi = 1; } // no unit of the choice exists in this array
      }
      panel(y0, GATE_H, WORDS[g] ? [g, WORDS[g]] : g, glo, ghi);
      cols.forEach((c, j) => line(svg, c, y0, GATE_H, PALETTE[j % PALETTE.length], glo, ghi));
    });
    el("line", { id: "cursor", x1: -10, x2: -10, y1: 0, y2: height, stroke: "#1d2430", "stroke-dasharray": "3 3" }, svg);
    const keys = $("unit-keys");
    keys.textContent = "";
    s.units.forEach((u, j) => {
      const k = document.createElement("span");
      k.style.color = PALETTE[j % PALETTE.length];
      k.textContent = "\u25a0 unit " + u + "  ";
      keys.appendChild(k);
    });
  }

  function buildSeries() {
    svg.addEventListener("mousemove", (ev) => {
      const box = svg.getBoundingClientRect();
      const x = ((ev.clientX - box.left) / box.width) * W;
      const t = Math.round(((x - LEFT) / (W - LEFT - RIGHT)) * (T - 1));
      if (t < 0 || t >= T) { tip.hidden = true; return; }
      const cursor = svg.querySelector("#cursor");
      cursor.setAttribute("x1", xOf(t));
      cursor.setAttribute("x2", xOf(t));
      const s = current();
      const rows = [[data.seriesName, fmt(data.series[t])]];
      for (const u of s.units) for (const r of gateRows(t, s, u)) rows.push(["unit " + u + " " + r[0], r[1]]);
      showTip(ev, "step " + t, rows);
    });
    svg.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  // ---- the list of most interpretable units ----
  function buildTopUnits() {
    const list = $("top-units");
    if (!data.units.length) {
      const li = document.createElement("li");
      li.textContent = "no unit follows the built-in signals here";
      list.appendChild(li);
    }
    for (const u of data.units) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "layer " + u.layer + (data.directions > 1 ? (u.direction ? "R" : "F") : "") + ", " + u.gate
        + " unit " + u.unit + ": r = " + u.r.toFixed(2) + " with " + u.signal.replace(/_/g, " ");
      b.addEventListener("click", () => api.select({ layer: u.layer, direction: u.direction, gate: u.gate, unit: u.unit }));
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  const listeners = { render: [], step: [] };
  const api = {
    data: data, T: T, H: H, SIGMOID: SIGMOID, WORDS: WORDS, values: values, at: at,
    current: current, fmt: fmt, label: label, row: row, step: 0,
    shade: null, // a function t -> colour that replaces the unit's colouring of the text
    render: () => render(),
    on: (what, fn) => listeners[what].push(fn),
    // select a layer / direction / gate / unit (any of them) and redraw everything
    select: (choice) => {
      if (choice.layer !== undefined) ui.layer.value = String(choice.layer);
      if (choice.direction !== undefined) ui.direction.value = String(choice.direction);
      if (choice.gate !== undefined) ui.gate.value = choice.gate;
      if (choice.unit !== undefined) for (const o of ui.unit.options) o.selected = +o.value === choice.unit;
      render();
    },
    setStep: (t) => {
      api.step = Math.min(Math.max(Math.round(t), 0), T - 1);
      markStep(api.step);
      for (const fn of listeners.step) fn(api.step);
    },
  };

  function render() {
    const s = current();
    if (data.mode === "text") renderText(s); else renderSeries(s);
    unitCard(s);
    for (const fn of listeners.render) fn(s);
    markStep(api.step);
  }

  fillSelect(ui.layer, Array.from({ length: data.layers }, (_, k) => [k, "layer " + k]));
  fillSelect(ui.direction, [[0, "forward"], [1, "reverse"]].slice(0, data.directions));
  ui.direction.parentElement.hidden = data.directions < 2;
  ui.gate.parentElement.hidden = data.mode !== "text"; // the series view shows every gate
  fillSelect(ui.gate, data.gates.map((g) => [g, label(g)]));
  fillSelect(ui.unit, Array.from({ length: H }, (_, k) => [k, "unit " + k]));
  const first = data.units.length ? data.units[0] : null;
  if (first) {
    ui.layer.value = String(first.layer);
    ui.direction.value = String(first.direction);
    ui.gate.value = first.gate;
  } else if (data.gates.includes("cell")) ui.gate.value = "cell";
  else ui.gate.value = "hidden";
  const initial = data.mode === "text" ? (first ? [first.unit] : [0]) : data.initialUnits;
  for (const o of ui.unit.options) o.selected = initial.includes(+o.value);
  if (data.mode === "text") buildText(); else buildSeries();
  buildTopUnits();
  for (const start of window.lensViews || []) start(api);
  for (const sel of Object.values(ui)) sel.addEventListener("change", render);
  // a link may open the page at a step and unit: lens.html#step=40&unit=3
  const wanted = new URLSearchParams(location.hash.slice(1));
  if (wanted.has("unit")) for (const o of ui.unit.options) o.selected = o.value === wanted.get("unit");
  render();
  api.setStep(+wanted.get("step") || 0);
  document.body.dataset.ready = "1";
})();
