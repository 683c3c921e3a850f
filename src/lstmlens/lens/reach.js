// lstmlens lens page, memory reach: for the output steps the page computed (data.reach),
// the curve reach_k / reach_0 by lag k on a log scale, and optionally the text shaded by
// it (the input k steps before the output step painted by log10 of its reach).
(window.lensViews = window.lensViews || []).push(function (api) {
  "use strict";
  const data = api.data;
  const box = document.getElementById("reach");
  const reach = data.reach || { steps: [], curves: {} };
  if (!reach.steps.length) {
    box.querySelector(".stepper").hidden = true;
    document.getElementById("reach-svg").hidden = true;
    const p = document.createElement("p");
    p.id = "reach-note";
    p.textContent = "Memory reach: " + (reach.note || "not computed") + ".";
    box.appendChild(p);
    return;
  }
  const svg = document.getElementById("reach-svg");
  const NS = svg.namespaceURI;
  const pick = document.getElementById("reach-step");
  const shade = document.getElementById("reach-shade");
  const W = 640, Hh = 220, L = 56, R = 12, TOP = 10, B = 34;
  shade.parentElement.hidden = data.mode !== "text";
  for (const t of reach.steps) {
    const o = document.createElement("option");
    o.value = String(t);
    o.textContent = "t = " + t + (data.mode === "text" ? " " + JSON.stringify(data.tokens[t]) : "");
    pick.appendChild(o);
  }
  pick.value = String(reach.steps[reach.steps.length - 1]);

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  }
  const log = (v) => Math.log10(Math.max(v, 1e-30));

  function curve() { return reach.curves[pick.value]; }
  function floor(c) {
    let lo = -1;
    for (const v of c) lo = Math.min(lo, log(v));
    return Math.floor(lo);
  }

  function draw() {
    const c = curve();
    const lo = floor(c), K = Math.max(c.length - 1, 1);
    svg.setAttribute("viewBox", "0 0 " + W + " " + Hh);
    svg.textContent = "";
    const x = (k) => L + (k / K) * (W - L - R);
    const y = (v) => TOP + (Math.max(log(v), lo) / lo) * (Hh - TOP - B);
    const every = Math.max(1, Math.ceil(-lo / 6));
    for (let e = 0; e >= lo; e -= every) {
      el("line", { x1: L, x2: W - R, y1: y(10 ** e), y2: y(10 ** e), stroke: "#eceff3" });
      el("text", { x: L - 6, y: y(10 ** e) + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6575" }, "1e" + e);
    }
    for (const k of [0, Math.round(K / 2), K]) el("text", { x: x(k), y: Hh - B + 14, "text-anchor": "middle", "font-size": 10, fill: "#5b6575" }, String(k));
    el("text", { x: (L + W - R) / 2, y: Hh - 4, "text-anchor": "middle", "font-size": 11 }, "lag k: steps back from t = " + pick.value);
    el("polyline", { points: c.map((v, k) => x(k).toFixed(1) + "," + y(v).toFixed(1)).join(" "), fill: "none", stroke: "#d62728", "stroke-width": 1.8 });
  }

  // the input at step s = t - k, painted white (reach 1e-6 or less) .. orange (reach 1)
  function paint(s) {
    const c = curve(), t = +pick.value, k = t - s;
    if (k < 0 || k >= c.length) return "";
    const a = Math.min(Math.max(1 + log(c[k]) / 6, 0), 1);
    return "rgb(255, " + Math.round(255 - 120 * a) + ", " + Math.round(255 - 215 * a) + ")";
  }

  pick.addEventListener("change", () => { draw(); if (shade.checked) api.render(); });
  shade.addEventListener("change", () => { api.shade = shade.checked ? paint : null; api.render(); });
  draw();
});
