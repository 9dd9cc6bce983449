// The keras-inspect graph page, part 1: lays out (with dagre) and draws the model held in
// #ki-data, and owns the view's state (folds, selection, marks, pan and zoom). Part 2
// (graph_panel.js) builds the side panel and the search on the API this part exports.
// Every string in the data comes from a model file or a plugin: it reaches the document through
// textContent only (never innerHTML), and never becomes a class name or an attribute name.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const ROLE_CLASSES = ["logits", "pooling", "normalization", "feature_map"];
  const LINE = 15, ROW = 18, PAD = 8, CHAR = 7.3, MAX_CHARS = 42;
  const data = JSON.parse(document.getElementById("ki-data").textContent);
  const nodes = data.nodes, N = nodes.length, terminals = data.terminals;
  const children = nodes.map(() => []);
  nodes.forEach((n, i) => { if (n.parent !== null) children[n.parent].push(i); });
  // Nested models start unfolded (their graph is the point); layers reached by interception
  // start folded (a transformer block lists a dozen of them).
  const folded = nodes.map((n) => n.kind === "owner");
  const $ = (id) => document.getElementById(id);
  const view = { x: 0, y: 0, k: 1 };
  let layout = null, selected = null, activePick = null, matches = new Set();
  const placed = new Map(); // layer index -> its element and centre, for the current drawing

  const paths = [];
  function pathOf(i) {
    if (paths[i] === undefined) {
      const p = nodes[i].parent;
      paths[i] = p === null ? nodes[i].name : pathOf(p) + "/" + nodes[i].name;
    }
    return paths[i];
  }
  const short = (text, max) => (text.length > max ? text.slice(0, max - 1) + "\u2026" : text);
  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function descendants(i) {
    let count = 0;
    for (const c of children[i]) count += 1 + descendants(c);
    return count;
  }

  // The endpoints expose(model) returns by default.
  const logits = data.defaults.logits ? data.defaults.logits.node : null;
  const featureMap = data.defaults.featureMap ? data.defaults.featureMap.node : null;

  // -- which node stands for a layer -------------------------------------------------------
  // A layer inside a folded group, or inside a subclassed layer (drawn as rows of its owner),
  // is stood for by the outermost such ancestor.
  function shownAs(i) {
    let r = i;
    for (let a = nodes[i].parent; a !== null; a = nodes[a].parent) {
      if (folded[a] || nodes[a].kind === "owner") r = a;
    }
    return r;
  }
  function rowsOf(i, depth, out) {
    for (const c of children[i]) {
      out.push({ index: c, depth: depth });
      if (children[c].length && !folded[c]) rowsOf(c, depth + 1, out);
    }
    return out;
  }
  const key = (x) => (x >= N ? "t" + (x - N) : "n" + shownAs(x));

  function hidden(i) {
    for (let a = nodes[i].parent; a !== null; a = nodes[a].parent) if (folded[a]) return true;
    return false;
  }
  function endpoints(i) {
    const out = [];
    if (i === logits) out.push("logits \u25b8 output");
    if (i === featureMap) out.push("feature map \u25c2 input");
    return out;
  }
  function badges(i) {
    const out = nodes[i].chosenFor.map((role) => ({ text: role, cls: ROLE_CLASSES.includes(role) ? role : "other" }));
    endpoints(i).forEach((text) => out.push({ text: text, cls: "endpoint" }));
    // A folded group says which default endpoint it hides.
    for (const [e, what] of [[logits, "holds the logits"], [featureMap, "holds the feature map"]]) {
      if (e !== null && e !== i && hidden(e) && shownAs(e) === i) out.push({ text: what, cls: "endpoint" });
    }
    return out;
  }
  function toggleText(i) {
    const what = nodes[i].kind === "owner" ? " layers inside (intercepted)" : " layers";
    return (folded[i] ? "\u25b8 " : "\u25be ") + descendants(i) + what;
  }
  function size(i) {
    const n = nodes[i];
    const lines = [short(n.name, MAX_CHARS), short(n.type + (n.shape ? "  " + n.shape : ""), MAX_CHARS)];
    let chars = Math.max(...lines.map((l) => l.length)) + (n.bias ? 8 : 3);
    let h = PAD * 2 + LINE * 2;
    if (badges(i).length) h += LINE + 2;
    if (children[i].length) {
      h += LINE;
      chars = Math.max(chars, toggleText(i).length + 1);
      if (!folded[i] && n.kind === "owner") {
        const rows = rowsOf(i, 0, []);
        h += rows.length * ROW;
        for (const r of rows) chars = Math.max(chars, 4 + r.depth * 2 + short(nodes[r.index].name, MAX_CHARS).length);
      }
    }
    return { width: Math.max(120, Math.min(chars, MAX_CHARS + 8) * CHAR + PAD * 2), height: h };
  }

  // -- layout (dagre) ------------------------------------------------------------------------
  function lay() {
    const g = new dagre.graphlib.Graph({ compound: true });
    g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 34, edgesep: 8, marginx: 24, marginy: 24 });
    g.setDefaultEdgeLabel(() => ({}));
    for (let i = 0; i < N; i++) {
      if (shownAs(i) !== i) continue;
      const n = nodes[i];
      if (n.kind === "model" && !folded[i]) g.setNode("n" + i, { cluster: i });
      else g.setNode("n" + i, Object.assign({ index: i }, size(i)));
      if (n.parent !== null) g.setParent("n" + i, "n" + n.parent);
    }
    terminals.forEach((t, k) => {
      const label = t.kind + " " + short(t.name, 30) + (t.shape ? "  " + t.shape : "");
      g.setNode("t" + k, { terminal: k, label: label, width: label.length * CHAR + PAD * 2, height: 28 });
    });
    const later = [];
    for (const [s, c] of data.edges) {
      const a = key(s), b = key(c);
      if (a === b) continue;
      // A layer called again later in the graph (a tied embedding used as the output
      // projection) would pull the layout upwards: such edges are drawn after it, aside.
      if (s < N && c < N && s > c) later.push([a, b]);
      else g.setEdge(a, b, { from: s, to: c });
    }
    if (!data.model.hasGraph) {
      // No graph, no connections: a column in tracking order (dashed: order, not data flow)
      // rather than one row as wide as the model.
      const top = nodes.map((n, i) => i).filter((i) => nodes[i].parent === null);
      top.slice(1).forEach((i, k) => g.setEdge("n" + top[k], "n" + i, { order: true }));
    }
    const started = performance.now();
    dagre.layout(g);
    return { graph: g, later: later, ms: Math.round(performance.now() - started) };
  }

  // -- drawing ---------------------------------------------------------------------------------
  function draw() {
    layout = lay();
    const g = layout.graph;
    for (const id of ["ki-groups", "ki-edges", "ki-nodes"]) $(id).replaceChildren();
    placed.clear();
    const clusters = g.nodes().map((id) => g.node(id)).filter((v) => v.cluster !== undefined);
    const depth = (i) => (nodes[i].parent === null ? 0 : 1 + depth(nodes[i].parent));
    clusters.sort((a, b) => depth(a.cluster) - depth(b.cluster)).forEach(drawCluster);
    g.edges().forEach((e) => drawEdge(g.edge(e)));
    layout.later.forEach(([a, b]) => drawLater(g.node(a), g.node(b)));
    g.nodes().forEach((id) => {
      const v = g.node(id);
      if (v.index !== undefined) drawNode(v);
      else if (v.terminal !== undefined) drawTerminal(v);
    });
    decorate();
    const shown = document.querySelectorAll("#ki-svg [data-index]").length;
    $("ki-status").textContent = N + " layers, " + shown + " drawn (" + (N - shown) +
      " in folded groups); layout " + layout.ms + " ms" +
      (data.model.edgesError ? "; connections not shown: " + data.model.edgesError : "");
    document.body.dataset.layoutMs = String(layout.ms);
  }
  function drawCluster(v) {
    const i = v.cluster, x = v.x - v.width / 2, y = v.y - v.height / 2;
    const group = el("g", { class: "cluster layer", "data-index": i }, $("ki-groups"));
    el("rect", { x: x, y: y - 6, width: v.width, height: v.height + 6, rx: 8, class: "box" }, group);
    const head = el("g", { class: "head toggle", "data-toggle": i }, group);
    el("text", { x: x + 8, y: y + 8 }, head,
      "\u25be " + short(nodes[i].name, 60) + " \u00b7 " + short(nodes[i].type, 30) + " \u00b7 " + descendants(i) + " layers");
    placed.set(i, { element: group, x: v.x, y: y + 8 });
  }
  function drawEdge(e) {
    const d = e.points.map((p, k) => (k ? "L" : "M") + p.x.toFixed(1) + " " + p.y.toFixed(1)).join(" ");
    const path = el("path", { d: d, class: "edge" }, $("ki-edges"));
    if (e.order) { path.classList.add("tracking"); return; }
    path.dataset.from = String(e.from);
    path.dataset.to = String(e.to);
    if (e.to === featureMap) path.classList.add("feature-map");
  }
  function drawLater(from, to) {
    const x0 = from.x + from.width / 2, x1 = to.x + to.width / 2;
    const bend = Math.max(x0, x1) + 40 + Math.abs(from.y - to.y) * 0.05;
    const d = "M" + x0 + " " + from.y + " C" + bend + " " + from.y + " " + bend + " " + to.y + " " + x1 + " " + to.y;
    const path = el("path", { d: d, class: "edge later" }, $("ki-edges"));
    el("title", {}, path, "a later call of a layer that is called more than once");
  }
  function drawTerminal(v) {
    const group = el("g", { class: "node terminal", transform: "translate(" + (v.x - v.width / 2) + "," + (v.y - v.height / 2) + ")" }, $("ki-nodes"));
    el("rect", { width: v.width, height: v.height, rx: 14, class: "box" }, group);
    el("text", { x: PAD, y: 18, class: "sub" }, group, v.label);
  }
  function drawNode(v) {
    const i = v.index, n = nodes[i], x0 = v.x - v.width / 2, y0 = v.y - v.height / 2;
    const group = el("g", { class: "node layer", "data-index": i, transform: "translate(" + x0 + "," + y0 + ")" }, $("ki-nodes"));
    if (children[i].length) group.classList.add("group");
    el("rect", { width: v.width, height: v.height, rx: 6, class: "box" }, group);
    el("text", { x: PAD, y: PAD + 11, class: "name" }, group, short(n.name, MAX_CHARS));
    el("text", { x: PAD, y: PAD + 11 + LINE, class: "sub" }, group, short(n.type + (n.shape ? "  " + n.shape : ""), MAX_CHARS));
    if (n.bias) el("text", { x: v.width - PAD, y: PAD + 10, class: "bias", "text-anchor": "end" }, group, "+bias");
    let y = PAD + 2 * LINE;
    const chips = badges(i);
    if (chips.length) {
      let x = PAD;
      for (const chip of chips) {
        const text = short(chip.text, 30), w = text.length * 6.2 + 8;
        const c = el("g", { class: "chip " + chip.cls, transform: "translate(" + x + "," + (y + 1) + ")" }, group);
        el("rect", { width: w, height: 14 }, c);
        el("text", { x: 4, y: 11 }, c, text);
        x += w + 4;
      }
      y += LINE + 2;
    }
    placed.set(i, { element: group, x: v.x, y: v.y });
    if (!children[i].length) return;
    const open = !folded[i];
    const toggle = el("g", { class: "toggle", "data-toggle": i }, group);
    el("text", { x: PAD, y: y + 12 }, toggle, toggleText(i));
    if (n.kind === "owner") el("title", {}, toggle, "no graph inside: these layers are reached by intercepting their calls");
    y += LINE;
    if (!open || n.kind !== "owner") return;
    for (const r of rowsOf(i, 0, [])) {
      const row = el("g", { class: "row layer", "data-index": r.index, transform: "translate(0," + y + ")" }, group);
      el("rect", { x: 2, width: v.width - 4, height: ROW }, row);
      const indent = PAD + r.depth * 14;
      if (children[r.index].length) {
        const t = el("g", { class: "toggle", "data-toggle": r.index }, row);
        el("text", { x: indent, y: 13 }, t, folded[r.index] ? "\u25b8" : "\u25be");
      }
      const m = nodes[r.index];
      const notes = m.chosenFor.concat(endpoints(r.index));
      el("text", { x: indent + 12, y: 13 }, row, short(m.name, MAX_CHARS - r.depth * 2) + (notes.length ? "  \u2190 " + notes.join(", ") : ""));
      el("title", {}, row, pathOf(r.index) + " (" + m.type + ")");
      placed.set(r.index, { element: row, x: v.x, y: y0 + y + ROW / 2 });
      y += ROW;
    }
  }

  // Marks that change without a new layout: selection, search matches, a search's path.
  function decorate() {
    for (const e of document.querySelectorAll("#ki-svg .selected, #ki-svg .match, #ki-svg .on-path, #ki-svg .answer, #ki-svg .holds-endpoint"))
      e.classList.remove("selected", "match", "on-path", "answer", "holds-endpoint");
    for (const e of document.querySelectorAll("#ki-svg .order")) e.remove();
    const mark = (i, cls) => { const p = placed.get(i) || placed.get(shownAs(i)); if (p) p.element.classList.add(cls); };
    for (const [i, cls] of [[logits, "endpoint-logits"], [featureMap, "endpoint-feature-map"]]) {
      if (i === null) continue;
      const p = placed.get(i);
      if (p) p.element.classList.add(cls);
      else mark(i, "holds-endpoint");
    }
    matches.forEach((i) => mark(i, "match"));
    if (activePick) {
      const visited = activePick.visited;
      visited.forEach((i, k) => {
        mark(i, "on-path");
        const p = placed.get(i);
        if (p && p.element.classList.contains("node") && visited.length <= 200)
          el("text", { x: -4, y: 12, class: "order", "text-anchor": "end" }, p.element, String(k + 1));
      });
      if (activePick.found && activePick.node !== null) mark(activePick.node, "answer");
    }
    if (selected !== null) mark(selected, "selected");
  }

  // -- view: pan, zoom, fit -------------------------------------------------------------------
  function apply() { $("ki-viewport").setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")"); }
  function fit(all) {
    const box = $("ki-canvas").getBoundingClientRect(), g = layout.graph.graph();
    const k = Math.min(box.width / g.width, box.height / g.height, 1);
    view.k = all || k >= 0.45 ? k : 0.85;
    view.x = (box.width - g.width * view.k) / 2;
    view.y = all || k >= 0.45 ? (box.height - g.height * view.k) / 2 : 10;
    apply();
  }
  function centre(i) {
    const p = placed.get(i) || placed.get(shownAs(i));
    if (!p) return;
    const box = $("ki-canvas").getBoundingClientRect();
    view.k = Math.max(view.k, 0.8);
    view.x = box.width / 2 - p.x * view.k;
    view.y = box.height / 2 - p.y * view.k;
    apply();
  }
  const canvas = $("ki-canvas");
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const box = canvas.getBoundingClientRect(), px = ev.clientX - box.left, py = ev.clientY - box.top;
    const k = Math.min(4, Math.max(0.05, view.k * Math.exp(-ev.deltaY * 0.0015)));
    view.x = px - ((px - view.x) * k) / view.k;
    view.y = py - ((py - view.y) * k) / view.k;
    view.k = k;
    apply();
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("pointerdown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y, moved: false };
  });
  window.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    canvas.classList.add("panning");
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    apply();
  });
  window.addEventListener("pointerup", () => { canvas.classList.remove("panning"); setTimeout(() => { drag = null; }, 0); });

  // -- interaction ------------------------------------------------------------------------------
  function toggle(i) {
    folded[i] = !folded[i];
    draw();
  }
  function reveal(i) {
    let changed = false;
    for (let a = nodes[i].parent; a !== null; a = nodes[a].parent) {
      if (folded[a]) { folded[a] = false; changed = true; }
    }
    if (changed) draw();
    select(i);
    centre(i);
  }
  const listeners = [];
  function select(i) {
    selected = i;
    decorate();
    listeners.forEach((f) => f(i));
  }
  $("ki-svg").addEventListener("click", (ev) => {
    if (drag && drag.moved) return;
    const t = ev.target.closest("[data-toggle]");
    if (t) { toggle(Number(t.dataset.toggle)); return; }
    const hit = ev.target.closest("[data-index]");
    if (hit) select(Number(hit.dataset.index));
  });
  function foldAll(on) {
    nodes.forEach((n, i) => { folded[i] = on && children[i].length > 0; });
    draw();
    fit(false);
  }

  window.kerasInspectGraph = {
    data: data, nodes: nodes, children: children, logits: logits, featureMap: featureMap,
    pathOf: pathOf, descendants: descendants,
    draw: draw, fit: fit, reveal: reveal, select: select, foldAll: foldAll,
    onSelect: (f) => listeners.push(f),
    setPick: (pick) => { activePick = pick; decorate(); },
    setMatches: (found) => { matches = new Set(found); decorate(); },
  };
})();
