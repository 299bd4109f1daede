// The latent map of the vaekit explorer: drawing, hover (the item under the pointer) and click (decode that
// point of the map). Loaded after explorer.js, whose helpers (state, api, show, setBase...) it uses.
"use strict";

async function loadMap() {
  const method = $("map-method").value;
  status(`computing the ${$("map-method").selectedOptions[0].textContent} map…`);
  const map = await api(`/api/map?method=${encodeURIComponent(method)}`);
  if ($("map-method").value !== method) return;  // another projection was chosen meanwhile
  state.map = map;
  status("");
  drawMap();
  drawLegend();
}

function mapFrame() {
  const canvas = $("map");
  const points = state.map.points;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const pad = 14;
  const sx = (canvas.width - 2 * pad) / ((x1 - x0) || 1), sy = (canvas.height - 2 * pad) / ((y1 - y0) || 1);
  return {
    toScreen: (p) => [pad + (p[0] - x0) * sx, canvas.height - pad - (p[1] - y0) * sy],
    toMap: (u, v) => [x0 + (u - pad) / sx, y0 + (canvas.height - pad - v) / sy],
  };
}

function drawMap(marker) {
  const canvas = $("map");
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  const frame = mapFrame();
  state.map.points.forEach((point, i) => {
    const [u, v] = frame.toScreen(point);
    const label = state.map.labels ? state.map.labels[i] : 0;
    context.fillStyle = PALETTE[label % PALETTE.length];
    context.globalAlpha = 0.7;
    context.fillRect(u - 2, v - 2, 4, 4);
  });
  context.globalAlpha = 1;
  if (marker) {
    context.strokeStyle = "#000";
    context.lineWidth = 2;
    context.beginPath();
    context.arc(marker[0], marker[1], 7, 0, 2 * Math.PI);
    context.stroke();
  }
}

function drawLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  if (!state.map.labels) return;
  const present = [...new Set(state.map.labels)].sort((a, b) => a - b);
  for (const label of present) {
    const entry = document.createElement("span");
    entry.className = "legend";
    entry.style.setProperty("--swatch", PALETTE[label % PALETTE.length]);
    entry.textContent = state.map.classes[label] ?? String(label);
    legend.appendChild(entry);
  }
}

function nearestPoint(u, v) {
  const frame = mapFrame();
  let best = -1, bestDistance = Infinity;
  state.map.points.forEach((point, i) => {
    const [x, y] = frame.toScreen(point);
    const distance = (x - u) ** 2 + (y - v) ** 2;
    if (distance < bestDistance) { best = i; bestDistance = distance; }
  });
  return bestDistance <= 64 ? best : -1;
}

function canvasPosition(event) {
  const canvas = $("map");
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

async function itemAt(index) {
  if (!state.itemCache.has(index)) {
    const answer = api(`/api/input/${index}`);
    state.itemCache.set(index, answer);
    answer.catch(() => state.itemCache.delete(index));  // a failed answer is asked again next time
  }
  return state.itemCache.get(index);
}

async function hoverMap(event) {
  if (!state.map) return;
  const token = ++state.hover;  // a later hover, or leaving the map, makes this answer stale
  const [u, v] = canvasPosition(event);
  const index = nearestPoint(u, v);
  const tip = $("map-tip");
  if (index < 0) { tip.hidden = true; return; }
  const data = await itemAt(index);
  if (token !== state.hover) return;
  const label = data.label ?? (state.map.labels ? state.map.classes[state.map.labels[index]] : null);
  tip.replaceChildren(renderItem(data.item, `item ${index}${label !== null && label !== undefined ? " · " + label : ""}`));
  tip.style.left = `${event.offsetX + 14}px`;
  tip.style.top = `${event.offsetY + 14}px`;
  tip.hidden = false;
}

async function clickMap(event) {
  if (!state.map) return;
  const [u, v] = canvasPosition(event);
  const [x, y] = mapFrame().toMap(u, v);
  const data = await api("/api/map/decode", { method: state.map.method, x, y, label: decodeLabel(null) });
  show("map-output", data.items[0]);
  $("map-where").textContent = `decoded at (${x.toFixed(2)}, ${y.toFixed(2)})`;
  drawMap([u, v]);
  setBase(data.z, `map point (${x.toFixed(2)}, ${y.toFixed(2)})`, decodeLabel(null));
}
