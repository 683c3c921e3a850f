// lstmlens lens page, the cell view: the classic cell diagram with the live values of one
// unit at one step t. LSTM: c_t = f c_{t-1} + i g, h_t = o act(c_t); GRU: h_t = (1 - z) n
// + z h_{t-1}; RNN: h_t = tanh(W x_t + U h_{t-1} + b). The initial state is taken as zero.
// Every number shown is also in #cell-numbers, each cell carrying data-key and data-value.
(window.lensViews = window.lensViews || []).push(function (api) {
  "use strict";
  const data = api.data;
  const svg = document.getElementById("cell-svg");
  const NS = svg.namespaceURI;
  const input = document.getElementById("step");
  const info = data.cell || { consecutive: true, layerNorm: false, proj: 0 };
  const v = info.variant || { peepholes: false, input: true, forget: true, output: true, coupled: false,
                              inputActivation: "tanh", outputActivation: "tanh", name: "vanilla" };
  input.max = String(api.T - 1);
  // 0.997 -> "99.7%", 0.42 -> "42%": the last percent is where saturation lives
  const pct = (x) => (100 * x).toFixed(x > 0.01 && x < 0.99 ? 0 : 1) + "%";
  const f3 = (x) => (Number.isNaN(x) ? "–" : x.toFixed(3));
  const act = (x, name) => (name === "identity" ? x : Math.tanh(x));

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  }
  // a wire through pts, with an arrowhead at its end unless extra.head === false
  function wire(pts, extra) {
    const opts = Object.assign({ head: true }, extra || {});
    const colour = opts.stroke || "#5b6575";
    el("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: colour,
      "stroke-width": 1.6, "stroke-dasharray": opts["stroke-dasharray"] || "" });
    if (!opts.head) return;
    const [x1, y1] = pts[pts.length - 2], [x2, y2] = pts[pts.length - 1];
    const a = Math.atan2(y2 - y1, x2 - x1), L = 8, W = 4;
    const p = (dl, dw) => (x2 - dl * Math.cos(a) - dw * Math.sin(a)).toFixed(1) + "," + (y2 - dl * Math.sin(a) + dw * Math.cos(a)).toFixed(1);
    el("polygon", { points: [x2 + "," + y2, p(L, W), p(L, -W)].join(" "), fill: colour });
  }
  const op = (x, y, sym) => { el("circle", { cx: x, cy: y, r: 12, fill: "#fff", stroke: "#1d2430" }); el("text", { x: x, y: y + 5, "text-anchor": "middle", "font-size": 16 }, sym); };
  // a gate box: its activation symbol and its value; a removed gate is grey and reads 1
  function gate(x, y, sym, name, value, removed, note) {
    el("rect", { x: x - 34, y: y - 16, width: 68, height: 32, rx: 5, fill: removed ? "#eceff3" : "#fbe7b5", stroke: removed ? "#9aa3b2" : "#c48a00", "stroke-dasharray": removed ? "4 3" : "" });
    el("text", { x: x, y: y + 5, "text-anchor": "middle", "font-size": 14, fill: removed ? "#9aa3b2" : "#1d2430" }, removed ? "no " + name : sym);
    el("text", { x: x, y: y + 32, "text-anchor": "middle", "font-size": 12, "data-key": name }, note || name + " " + f3(value));
  }
  const value = (x, y, key, text, anchor) => el("text", { x: x, y: y, "text-anchor": anchor || "middle", "font-size": 12, fill: "#2f6fc6", "data-key": key }, text);

  function get(s, t, g) {
    if (t < 0 || t >= api.T) return 0; // the initial state
    if (!data.gates.includes(g)) return NaN;
    return api.at(api.values(s.layer, s.direction, g), t, s.unit);
  }

  // the numbers of one step, by key: [symbol, value, meaning]
  function numbers(s, t) {
    // the step before t: t - 1, or t + 1 in the reverse direction of a bidirectional layer;
    // rows that are separate windows carry the state their step read (before_hidden, ...)
    const prev = info.consecutive ? t + (s.direction === 1 ? 1 : -1) : NaN;
    const before = (g) => (info.before ? api.at(api.values(s.layer, s.direction, "before_" + g), t, s.unit)
                                       : info.consecutive ? get(s, prev, g) : NaN);
    const h = get(s, t, "hidden");
    const hPrev = before("hidden");
    if (data.kind === "rnn") return { h_prev: ["h(t-1)", hPrev, "the state before"], h: ["h(t)", h, "the new state"] };
    if (data.kind === "gru") {
      const r = get(s, t, "reset"), z = get(s, t, "update"), n = get(s, t, "candidate");
      return { h_prev: ["h(t-1)", hPrev, "the state before"], r: ["r", r, "reset gate"], z: ["z", z, "update gate"],
               n: ["n", n, "new content"], keep: ["z·h(t-1)", z * hPrev, "kept from the old state"],
               write: ["(1-z)·n", (1 - z) * n, "written from the new content"], h: ["h(t)", h, "the new state"] };
    }
    const i = get(s, t, "input"), f = get(s, t, "forget"), g = get(s, t, "candidate"), o = get(s, t, "output");
    const c = get(s, t, "cell");
    const cPrev = before("cell");
    const use = info.layerNorm ? (info.proj ? NaN : h) : o * act(c, v.outputActivation);
    return {
      h_prev: ["h(t-1)", hPrev, "the short-term memory before"], c_prev: ["c(t-1)", cPrev, "the long-term memory before"],
      i: ["i", i, "input gate (learn)"], f: ["f", f, "forget gate"], g: ["g", g, "candidate, the new content"],
      o: ["o", o, "output gate (use)"], forget: ["f·c(t-1)", f * cPrev, "forget: the memory kept"],
      learn: ["i·g", i * g, "learn: the content written"], c: ["c(t)", c, "remember: the new memory"],
      use: [info.layerNorm ? "o·act(LN(c))" : "o·" + (v.outputActivation === "identity" ? "c(t)" : "tanh(c(t))"), use, "use: what is shown"],
      h: ["h(t)", h, info.proj ? "the output after the projection (unit " + s.unit + " of " + info.proj + ")" : "the output, the short-term memory"],
    };
  }

  function captions(s, t, n) {
    const out = [];
    if (info.before) out.push("Each step of this page is the last step of its own window: the memory before is the state one step earlier in that window.");
    else if (!info.consecutive) out.push("Each step of this page is a separate window, so the state before it is not shown.");
    if (s.direction === 1) out.push("Reverse direction: this layer reads the sequence backwards, so the step before t is t+1.");
    const first = s.direction === 1 ? api.T - 1 : 0;
    if (t === first && info.consecutive) out.push("At the first step the memory before is taken as zero (the initial state).");
    if (data.kind === "rnn") {
      out.push("h(t) = tanh(W x(t) + U h(t-1) + b) = " + f3(n.h[1]) + ": everything kept must pass through U and tanh again at every step.");
      return out;
    }
    if (data.kind === "gru") {
      out.push("The update gate keeps " + pct(n.z[1]) + " of the old state and takes " + pct(1 - n.z[1]) + " of the new content n = " + f3(n.n[1]) + ".");
      out.push("The reset gate lets " + pct(n.r[1]) + " of the old state into the new content.");
      out.push("h(t) = " + f3(n.keep[1]) + " + " + f3(n.write[1]) + " = " + f3(n.h[1]) + ".");
      return out;
    }
    const [, i] = n.i, [, f] = n.f, [, g] = n.g, [, o] = n.o;
    if (!v.forget && !v.coupled) out.push("This variant has no forget gate: the memory is kept whole (f = 1).");
    else out.push("The forget gate keeps " + pct(f) + " of the memory: " + f3(n.c_prev[1]) + " becomes " + f3(n.forget[1]) + (v.coupled ? " (coupled: f = 1 - i)." : "."));
    out.push((v.input ? "The input gate writes " + pct(i) + " of" : "With no input gate, all of") + " the new content g = " + f3(g) + ": it adds " + f3(n.learn[1]) + ".");
    out.push("The memory becomes c(t) = " + f3(n.forget[1]) + " + " + f3(n.learn[1]) + " = " + f3(n.c[1]) + ".");
    out.push((v.output ? "The output gate shows " + pct(o) : "With no output gate, all (100%)") + " of " + (v.outputActivation === "identity" ? "c(t)" : "tanh(c(t))") + ": h(t) = " + f3(n.h[1]) + (info.proj ? " after the projection." : "."));
    if (v.peepholes) out.push("Peepholes: the gates also see the memory (i and f see c(t-1), o sees c(t)).");
    if (info.layerNorm) out.push("With layer normalisation h uses LN(c(t)), which needs every unit; 'use' reads h.");
    return out;
  }

  function drawLstm(n, xText) {
    svg.setAttribute("viewBox", "0 0 660 330");
    el("rect", { x: 70, y: 30, width: 500, height: 262, rx: 14, fill: "#f6f7f9", stroke: "#9aa3b2" });
    // the memory line along the top: c(t-1) -> x forget -> + learn -> c(t)
    wire([[10, 60], [188, 60]]); value(10, 50, "c_prev_label", "c(t-1) = " + f3(n.c_prev[1]), "start");
    op(200, 60, "×"); wire([[212, 60], [348, 60]]);
    op(360, 60, "+"); wire([[372, 60], [650, 60]]); value(650, 50, "c_label", "c(t) = " + f3(n.c[1]), "end");
    value(200, 94, "forget_label", "forget " + f3(n.forget[1]));
    value(385, 94, "learn_label", "learn " + f3(n.learn[1]), "start");
    // the inputs along the bottom: h(t-1) and x(t) join and feed every gate
    wire([[10, 270], [470, 270]], { head: false }); value(10, 286, "h_prev_label", "h(t-1) = " + f3(n.h_prev[1]), "start");
    wire([[110, 325], [110, 270]], { head: false }); value(118, 318, "x_label", "x(t): " + xText, "start");
    for (const x of [200, 290, 360, 460]) wire([[x, 270], [x, 232]]);
    gate(200, 216, "σ", "f", n.f[1], !v.forget && !v.coupled, v.coupled ? "f = 1-i = " + f3(n.f[1]) : undefined);
    gate(290, 216, "σ", "i", n.i[1], !v.input);
    gate(360, 216, v.inputActivation === "identity" ? "id" : "tanh", "g", n.g[1], false);
    gate(460, 216, "σ", "o", n.o[1], !v.output);
    wire([[200, 200], [200, 72]]);
    op(360, 140, "×"); wire([[290, 200], [290, 140], [348, 140]]); wire([[360, 200], [360, 152]]); wire([[360, 128], [360, 72]]);
    if (v.coupled) wire([[256, 210], [234, 210]], { "stroke-dasharray": "4 3", stroke: "#c48a00" });
    // use: c(t) -> tanh -> x o -> h(t)
    wire([[520, 60], [520, 118]]);
    el("ellipse", { cx: 520, cy: 134, rx: 26, ry: 14, fill: "#fde0dc", stroke: "#c0392b" });
    el("text", { x: 520, y: 139, "text-anchor": "middle", "font-size": 13 }, v.outputActivation === "identity" ? "id" : "tanh");
    wire([[520, 148], [520, 204]]); op(520, 216, "×"); wire([[494, 216], [508, 216]]);
    value(548, 180, "use_label", "use " + f3(n.use[1]), "start");
    wire([[520, 228], [520, 300], [650, 300]]); value(650, 318, "h_label", "h(t) = " + f3(n.h[1]), "end");
    if (v.peepholes) {
      const dash = { "stroke-dasharray": "2 3", stroke: "#2f6fc6", head: false };
      wire([[150, 60], [150, 180], [166, 200]], dash); wire([[150, 180], [256, 200]], dash);
      wire([[540, 60], [560, 60], [560, 216], [494, 230]], dash);
      el("text", { x: 146, y: 130, "text-anchor": "end", "font-size": 11, fill: "#2f6fc6" }, "peepholes");
    }
  }

  function drawGru(n, xText) {
    svg.setAttribute("viewBox", "0 0 660 330");
    el("rect", { x: 70, y: 30, width: 500, height: 262, rx: 14, fill: "#f6f7f9", stroke: "#9aa3b2" });
    wire([[10, 60], [188, 60]]); value(10, 50, "h_prev_label", "h(t-1) = " + f3(n.h_prev[1]), "start");
    op(200, 60, "×"); wire([[212, 60], [418, 60]]); op(430, 60, "+"); wire([[442, 60], [650, 60]]);
    value(650, 50, "h_label", "h(t) = " + f3(n.h[1]), "end");
    value(200, 94, "keep_label", "keep " + f3(n.keep[1]));
    value(455, 94, "write_label", "write " + f3(n.write[1]), "start");
    wire([[10, 270], [440, 270]], { head: false }); value(10, 286, "h_prev_in", "h(t-1)", "start");
    wire([[110, 325], [110, 270]], { head: false }); value(118, 318, "x_label", "x(t): " + xText, "start");
    for (const x of [200, 300, 430]) wire([[x, 270], [x, 232]]);
    gate(200, 216, "σ", "z", n.z[1], false); gate(300, 216, "σ", "r", n.r[1], false); gate(430, 216, "tanh", "n", n.n[1], false);
    wire([[200, 200], [200, 72]]);
    op(430, 140, "×"); wire([[200, 150], [330, 150], [418, 140]], { "stroke-dasharray": "4 3" });
    el("text", { x: 330, y: 144, "text-anchor": "middle", "font-size": 11 }, "1 - z");
    wire([[430, 200], [430, 152]]); wire([[430, 128], [430, 72]]);
    wire([[300, 200], [300, 180], [396, 216]], { "stroke-dasharray": "2 3" });
  }

  function drawRnn(n, xText) {
    svg.setAttribute("viewBox", "0 0 660 240");
    el("rect", { x: 70, y: 30, width: 500, height: 170, rx: 14, fill: "#f6f7f9", stroke: "#9aa3b2" });
    wire([[10, 180], [300, 180], [300, 132]]); value(10, 196, "h_prev_label", "h(t-1) = " + f3(n.h_prev[1]), "start");
    wire([[220, 235], [220, 180]], { head: false }); value(228, 228, "x_label", "x(t): " + xText, "start");
    el("ellipse", { cx: 300, cy: 115, rx: 34, ry: 16, fill: "#fde0dc", stroke: "#c0392b" });
    el("text", { x: 300, y: 120, "text-anchor": "middle", "font-size": 14 }, "tanh");
    wire([[300, 99], [300, 60], [650, 60]]); value(650, 50, "h_label", "h(t) = " + f3(n.h[1]), "end");
  }

  function xText(s, t) {
    if (s.layer > 0) return "h(t) of layer " + (s.layer - 1);
    if (data.mode === "text") return JSON.stringify(data.tokens[t]);
    return data.seriesName + " = " + f3(data.series[t]);
  }

  function draw() {
    const s = api.current();
    const t = api.step;
    const n = numbers(s, t);
    svg.textContent = "";
    ({ lstm: drawLstm, gru: drawGru, rnn: drawRnn })[data.kind](n, xText(s, t));
    document.getElementById("step-label").textContent = t + " of " + (api.T - 1) + ", unit " + s.unit
      + (data.kind === "lstm" && v.name !== "vanilla" ? " (variant " + v.name + ")" : "");
    input.value = String(t);
    const list = document.getElementById("cell-captions");
    list.textContent = "";
    for (const c of captions(s, t, n)) {
      const li = document.createElement("li");
      li.textContent = c;
      list.appendChild(li);
    }
    const table = document.getElementById("cell-numbers");
    table.textContent = "";
    api.row(table, ["", "value", "what it is"], false);
    for (const [key, [sym, val, meaning]] of Object.entries(n)) {
      api.row(table, [sym, f3(val), meaning], true);
      const td = table.lastChild.children[1];
      td.dataset.key = key;
      td.dataset.value = Number.isNaN(val) ? "" : String(val);
    }
    if (data.kind !== "rnn") {
      const note = document.createElement("tr");
      note.innerHTML = '<td colspan="3" class="muted">pre-activations are not recorded by the lens; each gate shows its activation</td>';
      table.appendChild(note);
    }
  }

  function step(delta) { api.setStep(api.step + delta); }
  document.getElementById("step-back").addEventListener("click", () => step(-1));
  document.getElementById("step-forward").addEventListener("click", () => step(1));
  input.addEventListener("change", () => api.setStep(+input.value || 0));
  document.addEventListener("keydown", (ev) => {
    const tag = ev.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      step(ev.key === "ArrowRight" ? 1 : -1);
      ev.preventDefault();
    }
  });
  api.on("render", draw);
  api.on("step", draw);
});
