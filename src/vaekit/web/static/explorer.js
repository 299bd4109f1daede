// The vaekit latent explorer page. Plain JavaScript, no build step, no network beyond this server's
// JSON API (/api/...). Every number the page shows comes from the API; the page does no model math.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#ad494a", "#8ca252", "#bd9e39", "#7b4173", "#3182bd"];
const state = { info: null, seed: 0, base: null, baseLabel: null, interp: null, map: null, analysis: null,
                ends: { a: null, b: null }, itemCache: new Map(), busy: {}, hover: 0 };

// ------------------------------------------------------------------ API
async function api(path, body) {
  const options = body === undefined ? {} : body instanceof FormData
    ? { method: "POST", body }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const message = data.error || `HTTP ${response.status}`;
    status(message, true);
    throw new Error(message);
  }
  if ($("status").className === "error") status("");  // an answer that worked clears the last error
  return data;
}

function status(text, isError = false) {
  const element = $("status");
  element.textContent = text;
  element.className = isError ? "error" : "";
}

// Run one request per key at a time; a newer call replaces a waiting one (sliders fire many events).
function latest(key, work) {
  const slot = state.busy[key] || (state.busy[key] = { running: false, next: null });
  slot.next = work;
  if (slot.running) return;
  const pump = async () => {
    slot.running = true;
    while (slot.next) {
      const job = slot.next;
      slot.next = null;
      try { await job(); } catch (error) { /* shown in #status */ }
    }
    slot.running = false;
  };
  pump();
}

// ------------------------------------------------------------------ items
function renderItem(item, label) {
  const box = document.createElement("div");
  box.className = "item";
  if (item.png) {
    const img = document.createElement("img");
    img.src = item.png;
    img.alt = label || "item";
    box.appendChild(img);
  } else if (item.row) {
    const table = document.createElement("table");
    for (const [name, value] of Object.entries(item.row)) {
      const tr = table.insertRow();
      tr.insertCell().textContent = name;
      tr.insertCell().textContent = value === null ? "—" : typeof value === "number" ? formatNumber(value) : value;
    }
    box.appendChild(table);
  } else if (item.text !== undefined) {
    if (item.svg) {  // a molecule drawn by RDKit on the server
      const img = document.createElement("img");
      img.src = item.svg;
      img.alt = item.text;
      img.className = "molecule";
      box.appendChild(img);
    }
    const pre = document.createElement("pre");
    pre.textContent = item.text === "" ? "(empty)" : item.text;
    box.appendChild(pre);
  }
  if (label) {
    const caption = document.createElement("span");
    caption.className = "caption";
    caption.textContent = label;
    box.appendChild(caption);
  }
  return box;
}

// Table rows side by side: one table, a column per item (captions on top), a row per column of the data.
function renderRows(items, captions = []) {
  const table = document.createElement("table");
  table.className = "rows-table";
  if (captions.length) {
    const head = table.createTHead().insertRow();
    head.appendChild(document.createElement("th"));
    for (const caption of captions) head.appendChild(Object.assign(document.createElement("th"), { textContent: caption }));
  }
  const body = table.createTBody();
  for (const name of Object.keys(items[0].row)) {
    const tr = body.insertRow();
    tr.insertCell().textContent = name;
    for (const item of items) {
      const value = item.row[name];
      tr.insertCell().textContent = value === null ? "—" : typeof value === "number" ? formatNumber(value) : value;
    }
  }
  const box = document.createElement("div");
  box.className = "table-scroll";
  box.appendChild(table);
  return box;
}

function show(target, item, label) {
  const element = typeof target === "string" ? $(target) : target;
  element.replaceChildren(renderItem(item, label));
}

function signed(value) {
  const rounded = Math.round(value * 100) / 100 || 0;  // -3e-16 from the step grid reads +0.00
  return (rounded >= 0 ? "+" : "") + rounded.toFixed(2);
}

function formatNumber(value) {
  return Math.abs(value) >= 1000 || (Math.abs(value) < 0.01 && value !== 0) ? value.toExponential(2) : value.toFixed(3);
}

function labelOf() {
  const select = $("class");
  return !state.info.conditional || select.value === "" ? null : Number(select.value);
}

// A code is decoded under one class: the chosen one, else that of the item the code came from, else 0.
function decodeLabel(fallback = state.baseLabel) {
  if (!state.info.conditional) return null;
  return labelOf() ?? fallback ?? 0;
}

// ------------------------------------------------------------------ samples
async function sample() {
  const label = labelOf();
  const classes = state.info.conditional && label === null ? state.info.classes.length : 0;
  // A conditional model with no class chosen: one row per class (the API cycles through them).
  const perClass = classes ? Math.max(1, Math.min(8, Math.floor(state.info.limits.max_items / classes))) : 0;
  const n = classes ? Math.min(classes, state.info.limits.max_items) * perClass : 16;
  const data = await api("/api/sample", { n, temperature: Number($("temperature").value), seed: state.seed, label });
  const grid = $("samples");
  if (data.items.length && data.items[0].row) {
    grid.className = "";
    grid.replaceChildren(renderRows(data.items, data.items.map((_, i) => `#${i + 1}`)));
  } else if (!classes) {
    grid.className = "grid";
    grid.replaceChildren(...data.items.map((item) => renderItem(item)));
  } else {
    grid.className = "rows";
    const rows = [];
    for (let c = 0; c < Math.min(classes, data.items.length); c++) {
      const row = document.createElement("div");
      row.className = "grid class-row";
      const name = document.createElement("span");
      name.className = "row-label";
      name.textContent = state.info.classes[c];
      row.append(name, ...data.items.filter((_, i) => i % classes === c).map((item) => renderItem(item)));
      rows.push(row);
    }
    grid.replaceChildren(...rows);
  }
  $("seed-value").textContent = String(state.seed);
}

// ------------------------------------------------------------------ sliders
function buildSliders() {
  const holder = $("sliders");
  holder.replaceChildren();
  for (const dim of state.info.dims.slice(0, 8)) {
    const spread = Math.max(dim.spread, 1e-3);
    const row = document.createElement("label");
    row.className = "slider";
    const name = document.createElement("span");
    name.textContent = `z${dim.index} (KL ${dim.kl.toFixed(2)})`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: String(-3 * spread), max: String(3 * spread),
                           step: String(spread / 50), value: "0" });
    input.dataset.dim = String(dim.index);
    const value = document.createElement("output");
    value.textContent = "+0.00";
    input.addEventListener("input", () => {
      value.textContent = signed(Number(input.value));
      latest("slider", decodeSliders);
    });
    row.append(name, input, value);
    holder.appendChild(row);
  }
}

function setBase(z, caption, label = null) {
  state.base = z.slice();
  state.baseLabel = label;
  $("slider-base").textContent = `base: ${caption}`;
  for (const input of $("sliders").querySelectorAll("input")) {
    input.value = "0";
    input.nextElementSibling.textContent = "+0.00";
  }
  latest("slider", decodeSliders);
}

async function decodeSliders() {
  if (!state.base) return;  // not started yet
  const z = state.base.slice();
  const limit = state.info.limits.max_abs_latent;
  for (const input of $("sliders").querySelectorAll("input")) {
    const d = Number(input.dataset.dim);
    z[d] = Math.max(-limit, Math.min(limit, z[d] + Number(input.value)));
  }
  const data = await api("/api/decode", { z: [z], label: decodeLabel() });
  show("slider-output", data.items[0]);
}

// ------------------------------------------------------------------ interpolation
function endpoint(which) {
  const chosen = state.ends[which];
  if (chosen) return chosen.index !== null && chosen.index !== undefined ? { index: chosen.index } : { z: chosen.z };
  return { index: Number($(which === "a" ? "interp-a" : "interp-b").value) };
}

function endCaption(which) {
  const chosen = state.ends[which];
  if (chosen && (chosen.index === null || chosen.index === undefined)) return "your input, decoded";
  return `item ${chosen ? chosen.index : $(which === "a" ? "interp-a" : "interp-b").value}, decoded`;
}

async function interpolate() {
  const steps = 33;
  const a = endpoint("a");
  // a path from a held-out item is decoded under that item's class unless one is chosen
  const label = a.index !== undefined ? labelOf() : decodeLabel(state.ends.a ? state.ends.a.label_index : null);
  const data = await api("/api/interpolate", { a, b: endpoint("b"), steps, path: $("interp-path").value, label });
  state.interp = data.items;
  const slider = $("interp-position");
  slider.max = String(steps - 1);
  slider.disabled = false;
  show("interp-a-view", data.items[0], endCaption("a"));
  show("interp-b-view", data.items[steps - 1], endCaption("b"));
  showInterpolation();
}

function showInterpolation() {
  const slider = $("interp-position");
  const position = Number(slider.value);
  show("interp-output", state.interp[position]);
  $("interp-t").textContent = `t = ${(position / Number(slider.max)).toFixed(2)}`;
}

// ------------------------------------------------------------------ uploads, drawing, items
function showAnalysis(data, caption) {
  state.analysis = data;
  $("analysis").hidden = false;
  show("analysis-input", data.item, caption);
  show("analysis-recon", data.reconstruction);
  $("score-name").textContent = state.info.threshold.score;
  $("score").textContent = formatNumber(data.score);
  $("threshold").textContent = formatNumber(data.threshold);
  $("flag").textContent = data.flagged ? "anomalous" : "normal";
  $("flag").className = data.flagged ? "flagged" : "normal";
  const captions = data.neighbours.map(
    (n) => `item ${n.index}${n.label !== null ? " · " + n.label : ""} · d ${n.distance.toFixed(2)}`);
  if (data.neighbours.length && data.neighbours[0].row) {
    $("neighbours").replaceChildren(renderRows(data.neighbours, captions));
  } else {
    $("neighbours").replaceChildren(...data.neighbours.map((n, i) => renderItem(n, captions[i])));
  }
}

async function upload(blob, name, caption) {
  const form = new FormData();
  form.append("file", blob, name);
  showAnalysis(await api("/api/reconstruct", form), caption);
}

function setupDrawing() {
  const [channels, height, width] = state.info.shape;
  if (!state.info.uploads || channels !== 1 || Math.max(height, width) > 64) return;
  $("draw-wrap").hidden = false;
  const canvas = $("draw");
  const context = canvas.getContext("2d");
  const clear = () => { context.fillStyle = "#000"; context.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  let drawing = false;
  const stroke = (event) => {
    if (!drawing) return;
    const box = canvas.getBoundingClientRect();
    context.fillStyle = "#fff";
    context.beginPath();
    context.arc((event.clientX - box.left) * canvas.width / box.width,
                (event.clientY - box.top) * canvas.height / box.height, canvas.width / 14, 0, 2 * Math.PI);
    context.fill();
  };
  canvas.addEventListener("pointerdown", (event) => { drawing = true; stroke(event); });
  canvas.addEventListener("pointermove", stroke);
  window.addEventListener("pointerup", () => { drawing = false; });
  $("draw-clear").addEventListener("click", clear);
  $("draw-go").addEventListener("click", () => canvas.toBlob((blob) => upload(blob, "drawing.png", "your drawing")
    .catch(() => {}), "image/png"));
}

// ------------------------------------------------------------------ start
async function start() {
  try {
    state.info = await api("/api/info");
  } catch (error) {
    return;
  }
  const info = state.info;
  $("run-info").textContent = `${info.preset} · ${info.kind} data ${info.shape.join("×")} · ${info.latent_dim} latent ` +
    `dimensions · ${info.inputs} held-out inputs${info.conditional ? " · conditional" : ""}`;
  if (info.conditional) {
    $("class-control").hidden = false;
    const select = $("class");
    select.append(new Option("every class in turn", ""));
    info.classes.forEach((name, i) => select.append(new Option(name, String(i))));
    select.addEventListener("change", () => {
      latest("sample", sample);
      latest("slider", decodeSliders);
      if (state.interp) interpolate().catch(() => {});
    });
  }
  for (const id of ["interp-a", "interp-b", "item-index"]) $(id).max = String(info.inputs - 1);
  if (!info.uploads) $("upload-file").closest("label").hidden = true;

  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
    latest("sample", sample);
  });
  $("reseed").addEventListener("click", () => { state.seed += 1; latest("sample", sample); });
  buildSliders();
  $("slider-reset").addEventListener("click", () => setBase(info.center, "mean code"));
  $("interp-go").addEventListener("click", () => interpolate().catch(() => {}));
  for (const id of ["interp-a", "interp-b"]) {
    $(id).addEventListener("change", () => { state.ends[id === "interp-a" ? "a" : "b"] = null; });
  }
  $("interp-position").addEventListener("input", showInterpolation);
  $("map-method").addEventListener("change", () => loadMap().catch(() => {}));
  $("map").addEventListener("mousemove", (event) => hoverMap(event).catch(() => {}));
  $("map").addEventListener("mouseleave", () => { state.hover += 1; $("map-tip").hidden = true; });
  $("map").addEventListener("click", (event) => clickMap(event).catch(() => {}));
  $("upload-file").addEventListener("change", () => {
    const file = $("upload-file").files[0];
    if (file) upload(file, file.name, file.name).catch(() => {});
  });
  $("item-go").addEventListener("click", async () => {
    const index = Number($("item-index").value);
    const data = await api(`/api/item/${index}`).catch(() => null);
    if (data) showAnalysis(data, `item ${index}`);
  });
  $("use-a").addEventListener("click", () => { state.ends.a = state.analysis; interpolate().catch(() => {}); });
  $("use-b").addEventListener("click", () => { state.ends.b = state.analysis; interpolate().catch(() => {}); });
  $("use-base").addEventListener("click", () => {
    const chosen = state.analysis;
    setBase(chosen.z, chosen.index === null ? "your input" : `item ${chosen.index}`, chosen.label_index);
  });
  setupDrawing();

  await Promise.allSettled([sample(), loadMap(), interpolate()]);
  setBase(info.center, "mean code");
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
