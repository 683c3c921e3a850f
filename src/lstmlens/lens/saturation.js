// lstmlens lens page, the saturation view (Karpathy, Johnson & Fei-Fei 2015): for each
// sigmoid gate of the chosen layer, one point per unit at (fraction of steps shut < 0.1,
// fraction wide open > 0.9). Clicking a point (or Enter on it) selects that unit.
(window.lensViews = window.lensViews || []).push(function (api) {
  "use strict";
  const data = api.data;
  const box = document.getElementById("saturation");
  const NS = document.getElementById("cell-svg").namespaceURI; // no URL written in the page
  const S = 150, M = 22;

  function el(name, attrs, parent, text) {
    const e = document.createElementNS(NS, name);
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }

  function draw(s) {
    box.textContent = "";
    const stats = data.stats[s.layer + "/" + s.direction].saturation;
    const gates = Object.keys(stats);
    if (!gates.length) {
      box.textContent = "This cell has no sigmoid gate.";
      return;
    }
    for (const g of gates) {
      const svg = el("svg", { viewBox: "0 0 " + (S + M + 6) + " " + (S + M + 16), class: "sat-plot", "data-gate": g, role: "group", "aria-label": "saturation of the " + g + " gate" }, box);
      el("text", { x: M + S / 2, y: 11, "text-anchor": "middle", "font-size": 11 }, svg, api.label(g));
      el("rect", { x: M, y: 16, width: S, height: S, fill: "#fafbfc", stroke: "#d9dee6" }, svg);
      el("line", { x1: M, y1: 16 + S, x2: M + S, y2: 16, stroke: "#d9dee6", "stroke-dasharray": "3 3" }, svg);
      el("text", { x: M + S / 2, y: S + M + 12, "text-anchor": "middle", "font-size": 9, fill: "#5b6575" }, svg, "shut (left-saturated)");
      el("text", { x: 9, y: 16 + S / 2, "text-anchor": "middle", "font-size": 9, fill: "#5b6575", transform: "rotate(-90 9 " + (16 + S / 2) + ")" }, svg, "open (right)");
      const { left, right } = stats[g];
      left.forEach((l, u) => {
        if (l === null || right[u] === null) return;
        const chosen = u === s.unit;
        const dot = el("circle", { cx: M + l * S, cy: 16 + S - right[u] * S, r: chosen ? 5 : 3.2, "data-unit": u, tabindex: 0,
          fill: chosen ? "#d62728" : "#2f6fc6", "fill-opacity": chosen ? 1 : 0.55, stroke: chosen ? "#1d2430" : "none", class: "sat-point" }, svg);
        el("title", {}, dot, "unit " + u + ": shut " + (100 * l).toFixed(0) + "%, open " + (100 * right[u]).toFixed(0) + "%");
      });
    }
  }

  function pick(ev) {
    const dot = ev.target.closest && ev.target.closest("circle[data-unit]");
    if (dot && (ev.type === "click" || ev.key === "Enter")) api.select({ unit: +dot.dataset.unit });
  }
  box.addEventListener("click", pick);
  box.addEventListener("keydown", pick);
  api.on("render", draw);
});
