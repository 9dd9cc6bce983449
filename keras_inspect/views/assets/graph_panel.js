// The keras-inspect graph page, part 2: the side panel (what the searches pick and the path each
// took, the expose(model) defaults, token geometry, the selected layer) and the search box, on
// the API of graph_view.js. Text goes in through textContent only.
(function () {
  "use strict";
  const G = window.kerasInspectGraph, data = G.data, nodes = G.nodes, N = nodes.length;
  const $ = (id) => document.getElementById(id);
  const pathOf = G.pathOf;
  function html(tag, parent, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  let activePick = null;

  function link(parent, i, text) {
    const b = html("button", parent, text === undefined ? pathOf(i) : text, "ki-link");
    b.type = "button";
    b.addEventListener("click", () => G.reveal(i));
    return b;
  }
  function details(i) {
    const box = $("ki-details"), n = nodes[i];
    box.replaceChildren();
    const dl = html("dl", box);
    const row = (term, value) => { html("dt", dl, term); return html("dd", dl, value); };
    row("path", pathOf(i));
    row("type", n.type);
    row("output shape", n.shape || (n.inGraph ? "unknown" : "unknown (no graph: reached by interception)"));
    const roles = row("roles", n.roles.length ? "" : "none");
    for (const [role, plugin] of n.roles) {
      const picked = n.chosenFor.includes(role) ? " (a search picks it)" : "";
      html("div", roles, role + picked + " \u2014 decided by " + (plugin || "?"));
    }
    row("bias", n.bias ? "yes \u2014 from " + (n.biasPlugin || "?") : "none");
    const ends = [];
    if (i === G.logits) ends.push("logits: its output");
    if (i === G.featureMap) ends.push("feature map: its input");
    row("expose(model)", ends.length ? ends.join("; ") : "\u2014");
    if (n.parent !== null) link(row("inside", ""), n.parent);
    if (G.children[i].length) row("contains", G.descendants(i) + " layers" + (n.kind === "owner" ? ", reached by interception" : ""));
  }

  function renderPicks() {
    const box = $("ki-picks");
    for (const pick of data.chosen) {
      const card = html("div", box, undefined, "ki-pick");
      const head = html("div", card, undefined, "ki-pick-head");
      html("span", head, pick.role, "ki-role");
      if (pick.node !== null) link(head, pick.node);
      else html("span", head, "no layer", "ki-muted");
      if (pick.plugin) html("div", card, "decided by " + pick.plugin, "ki-muted");
      if (pick.error) html("div", card, pick.error, "ki-error");
      if (pick.searchError) html("div", card, "replay stopped: " + pick.searchError, "ki-error");
      const v = pick.visited.length;
      const why = html("button", card, "why? the " + (pick.strategy || "?") + " search looked at " + v + " layer" + (v === 1 ? "" : "s") + (pick.found ? " before it stopped" : " and found none"), "ki-link");
      why.type = "button";
      const list = html("ol", card, undefined, "ki-path-list");
      list.hidden = true;
      why.addEventListener("click", () => {
        const on = activePick !== pick;
        document.querySelectorAll(".ki-pick.active").forEach((c) => c.classList.remove("active"));
        document.querySelectorAll(".ki-path-list").forEach((l) => { l.hidden = true; });
        activePick = on ? pick : null;
        if (on) {
          card.classList.add("active");
          list.hidden = false;
          if (!list.childElementCount) fillPath(list, pick);
        }
        G.setPick(activePick);
        if (on && pick.node !== null) G.reveal(pick.node);
      });
    }
  }
  function fillPath(list, pick) {
    const limit = 100;
    pick.visited.slice(0, limit).forEach((i, k) => {
      const li = html("li", list);
      if (pick.found && k === pick.visited.length - 1) li.className = "answer";
      link(li, i, pathOf(i) + "  " + nodes[i].type + (pick.found && k === pick.visited.length - 1 ? "  \u2190 plays " + pick.role : ""));
    });
    if (pick.visited.length > limit) html("li", list, "\u2026 and " + (pick.visited.length - limit) + " more", "ki-muted");
  }
  function renderDefaults() {
    const dl = $("ki-defaults"), d = data.defaults;
    const item = (term, end, error, what) => {
      html("dt", dl, term);
      const dd = html("dd", dl);
      if (end && end.node !== null) { dd.appendChild(document.createTextNode(what + " ")); link(dd, end.node); if (end.shape) dd.appendChild(document.createTextNode(", shape " + end.shape)); }
      else html("span", dd, error || "none", "ki-error");
    };
    item("logits", d.logits, d.logitsError, "output of");
    item("feature map", d.featureMap, d.featureMapError, "input of");
  }
  function renderTokens() {
    if (!data.tokenGeometry.length) return;
    $("ki-tokens").hidden = false;
    for (const t of data.tokenGeometry) {
      const card = html("div", $("ki-token-list"), undefined, "ki-pick");
      if (t.node !== null) link(card, t.node, t.signal);
      else html("div", card, t.signal, "ki-role");
      const dl = html("dl", card);
      for (const [k, v] of t.fields) { html("dt", dl, k); html("dd", dl, v); }
    }
  }

  function search(text) {
    const q = text.trim().toLowerCase(), box = $("ki-results"), list = $("ki-result-list");
    list.replaceChildren();
    if (!q) { box.hidden = true; G.setMatches([]); return []; }
    const found = [];
    for (let i = 0; i < N; i++) if (pathOf(i).toLowerCase().includes(q)) found.push(i);
    $("ki-result-count").textContent = found.length + " layer" + (found.length === 1 ? "" : "s") + " match" + (found.length > 30 ? "; the first 30:" : "");
    for (const i of found.slice(0, 30)) link(html("li", list), i, pathOf(i) + "  (" + nodes[i].type + ")");
    box.hidden = false;
    G.setMatches(found);
    return found;
  }
  const input = $("ki-search");
  input.addEventListener("input", () => search(input.value));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      const found = search(input.value);
      if (found.length) { $("ki-results").hidden = true; G.reveal(found[0]); }
    }
    if (ev.key === "Escape") { input.value = ""; search(""); }
  });

  const m = data.model;
  $("ki-title").textContent = m.name + " \u00b7 " + m.type + " (" + m.flavour + ")";
  document.title = m.name + " \u2014 keras-inspect graph";
  G.onSelect(details);
  $("ki-fold-all").addEventListener("click", () => G.foldAll(true));
  $("ki-unfold-all").addEventListener("click", () => G.foldAll(false));
  $("ki-fit").addEventListener("click", () => G.fit(true));
  renderPicks();
  renderDefaults();
  renderTokens();
  G.draw();
  if (data.roleFilter !== null) {
    // summary(model, role=...): the layers that can play the role are the ones to look at.
    const role = data.roleFilter;
    G.setMatches(nodes.map((n, i) => (n.roles.some((r) => r[0] === role) ? i : -1)).filter((i) => i >= 0));
  }
  G.fit(false);
  document.body.dataset.ready = "true";
})();
