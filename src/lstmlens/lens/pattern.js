// lstmlens lens page, pattern search (Strobelt et al., LSTMVis): the units of the chosen
// layer and gate whose value stays above a threshold over the steps [from, to] form a
// pattern P; every other window W of the same length is scored by the Jaccard index
// |P ∩ A_W| / |P ∪ A_W|, A_W being the units above the threshold over all of W; the best
// windows are listed in context, overlapping the selection or each other left out.
(window.lensViews = window.lensViews || []).push(function (api) {
  "use strict";
  const data = api.data;
  if (data.mode !== "text") return;
  const $ = (id) => document.getElementById(id);
  const from = $("pat-from"), to = $("pat-to"), threshold = $("pat-threshold");
  const TOP = 10, CONTEXT = 24;
  from.max = to.max = String(api.T - 1);
  // the recorded corpus (data.corpus: more steps than the page shows, h and c as uint8) when
  // the page has one and it holds the chosen gate, else the page's own steps
  const corpus = data.corpus || null;
  const decoded = new Map();
  function source(s) {
    const key = s.layer + "/" + s.direction + "/" + s.gate;
    if (!corpus || !corpus.arrays[key]) return { a: api.values(s.layer, s.direction, s.gate), T: api.T, tokens: data.tokens };
    if (!decoded.has(key)) {
      const e = corpus.arrays[key], bin = atob(e.b64), a = new Float32Array(bin.length), step = (e.hi - e.lo) / 255;
      for (let k = 0; k < a.length; k++) a[k] = e.lo + bin.charCodeAt(k) * step;
      a.width = e.width;
      decoded.set(key, a);
    }
    return { a: decoded.get(key), T: corpus.steps, tokens: corpus.tokens };
  }

  // a text selection inside the text sets the range
  document.addEventListener("selectionchange", () => {
    const sel = window.getSelection();
    if (sel.isCollapsed || !sel.anchorNode) return;
    const stepOf = (node) => {
      const span = (node.nodeType === 1 ? node : node.parentElement).closest("#text span[data-step]");
      return span ? +span.dataset.step : null;
    };
    const a = stepOf(sel.anchorNode), b = stepOf(sel.focusNode);
    if (a === null || b === null) return;
    from.value = String(Math.min(a, b));
    to.value = String(Math.max(a, b));
  });

  // run[t * H + u]: how many steps up to t the unit has stayed above the threshold
  function runs(a, T, theta) {
    const W = a.width;
    const run = new Uint16Array(T * W);
    for (let t = 0; t < T; t++) {
      for (let u = 0; u < W; u++) {
        if (a[t * W + u] > theta) run[t * W + u] = t ? Math.min(run[(t - 1) * W + u] + 1, 65535) : 1;
      }
    }
    return run;
  }

  function search() {
    const s = api.current();
    const { a, T, tokens } = source(s);
    const W = a.width;
    const lo = Math.max(0, Math.min(+from.value, +to.value)), hi = Math.min(api.T - 1, Math.max(+from.value, +to.value));
    const L = hi - lo + 1, theta = +threshold.value;
    const run = runs(a, T, theta);
    const pattern = [];
    for (let u = 0; u < W; u++) if (run[hi * W + u] >= L) pattern.push(u);
    const list = $("pat-results");
    list.textContent = "";
    $("pat-summary").textContent = pattern.length
      ? "pattern: " + pattern.length + " unit(s) of " + api.label(s.gate) + " above " + theta + " over steps " + lo + ".." + hi + ", searched in " + T + " steps (units " + pattern.slice(0, 12).join(", ") + (pattern.length > 12 ? ", ..." : "") + ")"
      : "no unit of " + api.label(s.gate) + " stays above " + theta + " over steps " + lo + ".." + hi + "; lower the threshold or shorten the range";
    if (!pattern.length) return [];
    const inP = new Uint8Array(W);
    for (const u of pattern) inP[u] = 1;
    const scored = [];
    for (let end = L - 1; end < T; end++) {
      const start = end - L + 1;
      if (start <= hi && end >= lo) continue; // the selection itself
      let both = 0, active = 0;
      for (let u = 0; u < W; u++) if (run[end * W + u] >= L) { active++; both += inP[u]; }
      if (both) scored.push([both / (pattern.length + active - both), start]);
    }
    scored.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
    const found = [];
    for (const [score, start] of scored) {
      if (found.some(([, s0]) => Math.abs(s0 - start) < L)) continue;
      found.push([score, start]);
      if (found.length === TOP) break;
    }
    for (const [score, start] of found) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.step = String(start);
      b.dataset.score = score.toFixed(4);
      const pre = tokens.slice(Math.max(0, start - CONTEXT), start).join("");
      const mid = tokens.slice(start, start + L).join("");
      const post = tokens.slice(start + L, start + L + CONTEXT).join("");
      b.append(document.createTextNode("match " + (100 * score).toFixed(0) + "% at step " + start + ": …" + pre));
      const mark = document.createElement("mark");
      mark.textContent = mid;
      b.append(mark, document.createTextNode(post + "…"));
      if (start < api.T) b.addEventListener("click", () => api.setStep(start));
      else b.title = "beyond the steps this page shows";
      li.appendChild(b);
      list.appendChild(li);
    }
    if (!found.length) $("pat-summary").textContent += "; no other place fires with them";
    return found;
  }
  $("pat-search").addEventListener("click", search);
  threshold.addEventListener("keydown", (ev) => { if (ev.key === "Enter") search(); });
});
