// streamkit dashboard. Plain JavaScript, no dependencies, no build step.
// Pages (by URL hash): #/streams, #/streams/<s> (its consumers),
// #/streams/<s>/consumers/<c>/dead (dead letters), #/streams/<s>/tail (live tail, publish).
// One poll every POLL_MS per open page; the tail is one streaming fetch of the SSE route.
"use strict";

const POLL_MS = 3000;
const PAGE = 50;
const TAIL_ROWS = 200;
const KEY = "streamkit.apiKey";

let poller = null; // the current page's timer
let tail = null; // the current tail's AbortController
let generation = 0; // bumped on every page change; stale answers are dropped

class AuthError extends Error {}

function apiKey() {
  return sessionStorage.getItem(KEY);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function headers(extra) {
  const out = Object.assign({ Accept: "application/json" }, extra || {});
  const key = apiKey();
  if (key) out.Authorization = "Bearer " + key;
  return out;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const response = await fetch(path, opts);
  if (response.status === 401) {
    unauthorized();
    throw new AuthError("unauthorized");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(problem(body, response));
  return body;
}

// An error answer as one line: the summary, then each field's problems.
function problem(body, response) {
  const parts = [body.summary || response.status + " " + response.statusText];
  for (const [field, errors] of Object.entries(body.validation_errors || {})) {
    parts.push(field + ": " + [].concat(errors).join(", "));
  }
  return parts.join("; ");
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function unauthorized() {
  needKey(apiKey() ? "The server refused this API key (401 Unauthorized). Enter the right key." : "This server needs an API key (401 Unauthorized).");
}

function needKey(message) {
  stop();
  document.getElementById("auth").hidden = false;
  document.getElementById("auth-message").textContent = message;
  document.getElementById("view").replaceChildren();
  setStatus("");
}

function setStatus(text, bad) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.className = bad ? "error" : "";
}

function stop() {
  generation += 1;
  if (poller !== null) clearTimeout(poller);
  poller = null;
  if (tail !== null) tail.abort();
  tail = null;
}

// Calls load() now and every POLL_MS after each answer, while the page is shown.
function poll(load) {
  const mine = generation;
  const tick = async () => {
    if (mine !== generation) return;
    if (!document.hidden) {
      try {
        await load(mine);
        if (mine === generation) setStatus("updated " + new Date().toLocaleTimeString());
      } catch (err) {
        if (err instanceof AuthError) return;
        if (mine === generation) setStatus(err.message, true);
      }
    }
    if (mine === generation) poller = setTimeout(tick, POLL_MS);
  };
  tick();
}

function enc(name) {
  return encodeURIComponent(name);
}

function crumbs(...parts) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren();
  parts.forEach(([label, href], i) => {
    if (i) nav.append(el("span", { text: "/" }));
    nav.append(href ? el("a", { href, text: label }) : el("strong", { text: label }));
  });
}

function bytes(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return value.toFixed(1) + " " + units[unit];
}

function perSecond(rates) {
  const last = rates.length ? rates[rates.length - 1] : 0;
  return (last >= 10 ? last.toFixed(0) : last.toFixed(1)) + "/s";
}

function sparkline(rates, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const top = Math.max(1, ...rates);
  const step = rates.length > 1 ? 120 / (rates.length - 1) : 0;
  const points = rates.map((r, i) => (i * step).toFixed(1) + "," + (23 - (r / top) * 22).toFixed(1));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.length > 1 ? points.join(" ") : "0,23 120,23");
  svg.append(line);
  return svg;
}

function table(columns, rows, id) {
  const head = el("tr", {}, ...columns.map(([label, cls]) => el("th", { class: cls, text: label })));
  return el("table", { id }, el("thead", {}, head), el("tbody", {}, ...rows));
}

function num(value, attrs) {
  return el("td", Object.assign({ class: "num", text: String(value) }, attrs || {}));
}

// -- streams -----------------------------------------------------------------------

function streamsPage(params) {
  crumbs(["streams", null]);
  const q = params.get("q") || "";
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const filter = el("input", { id: "filter", type: "search", placeholder: "filter by name", value: q, "aria-label": "filter streams by name" });
  filter.addEventListener("change", () => { location.hash = "#/streams?q=" + enc(filter.value.trim()); });
  const info = el("span", { id: "page-info", class: "muted" });
  const prev = el("button", { id: "prev", type: "button", text: "previous", disabled: offset === 0 });
  const next = el("button", { id: "next", type: "button", text: "next", disabled: true });
  prev.addEventListener("click", () => { location.hash = "#/streams?q=" + enc(q) + "&offset=" + Math.max(0, offset - PAGE); });
  next.addEventListener("click", () => { location.hash = "#/streams?q=" + enc(q) + "&offset=" + (offset + PAGE); });
  const holder = el("div");
  document.getElementById("view").replaceChildren(el("h1", { text: "Streams" }), el("div", { class: "toolbar" }, filter, prev, next, info), holder);
  poll(async (mine) => {
    const data = await api("/api/dashboard?limit=" + PAGE + "&offset=" + offset + "&q=" + enc(q));
    if (mine !== generation) return;
    const last = Math.min(data.total, offset + data.streams.length);
    info.textContent = data.total ? (offset + 1) + "-" + last + " of " + data.total : "no streams" + (q ? " match" : "");
    next.disabled = last >= data.total;
    const rows = data.streams.map((s) => el("tr", { "data-stream": s.name },
      el("td", {}, el("a", { href: "#/streams/" + enc(s.name), text: s.name })),
      num(s.message_count, { "data-field": "messages" }),
      num(bytes(s.storage_size)),
      num(s.first_seq ?? "–"),
      num(s.last_seq ?? "–"),
      el("td", {}, sparkline(s.publish_rate, "publish rate of " + s.name), el("span", { class: "rate", text: perSecond(s.publish_rate) })),
      num(s.consumer_count),
      el("td", {}, el("a", { href: "#/streams/" + enc(s.name) + "/tail", text: "tail" }))));
    holder.replaceChildren(table([["name"], ["messages", "num"], ["bytes", "num"], ["first seq", "num"], ["last seq", "num"], ["publish rate"], ["consumers", "num"], [""]], rows, "streams"));
  });
}

// -- consumers of one stream -------------------------------------------------------------

function consumersPage(stream) {
  crumbs(["streams", "#/streams"], [stream, null]);
  const summary = el("p", { id: "summary", class: "muted" });
  const holder = el("div");
  document.getElementById("view").replaceChildren(
    el("h1", { text: "Consumers of " + stream }), summary,
    el("p", {}, el("a", { href: "#/streams/" + enc(stream) + "/tail", text: "live tail and publish" })), holder);
  poll(async (mine) => {
    const data = await api("/api/dashboard?limit=1&stream=" + enc(stream));
    if (mine !== generation) return;
    const s = data.stream;
    if (s) summary.textContent = s.message_count + " messages, " + bytes(s.storage_size) + ", seq " + (s.first_seq ?? "–") + " to " + (s.last_seq ?? "–") + ", " + perSecond(s.publish_rate) + " published";
    const rows = data.consumers.map((c) => el("tr", { "data-consumer": c.name },
      el("td", { text: c.name + (c.ephemeral ? " (ephemeral)" : "") }),
      el("td", { text: c.filter_key_pattern }),
      num(c.lag, { "data-field": "lag", class: "num" + (c.lag > 1000 ? " lag-high" : "") }),
      num(c.in_flight, { "data-field": "in_flight" }),
      num(c.redelivered, { "data-field": "redelivered" }),
      el("td", { class: "num" }, el("a", { href: "#/streams/" + enc(stream) + "/consumers/" + enc(c.name) + "/dead", text: String(c.dead), "data-field": "dead" })),
      el("td", {}, sparkline(c.ack_rate, "ack rate of " + c.name), el("span", { class: "rate", text: perSecond(c.ack_rate) }))));
    holder.replaceChildren(rows.length
      ? table([["consumer"], ["filter"], ["lag", "num"], ["in flight", "num"], ["redeliveries", "num"], ["dead letters", "num"], ["ack rate"]], rows, "consumers")
      : el("p", { class: "muted", text: "No consumers." }));
  });
}

// -- dead letters of one consumer ---------------------------------------------------------

function preview(message) {
  const text = message.encoding === "base64" ? "(base64) " + message.data : message.data;
  return text.length > 300 ? text.slice(0, 300) + "…" : text;
}

function deadPage(stream, consumer) {
  crumbs(["streams", "#/streams"], [stream, "#/streams/" + enc(stream)], [consumer + ": dead letters", null]);
  const base = "/api/streams/" + enc(stream) + "/consumers/" + enc(consumer) + "/dead";
  const holder = el("div");
  const result = el("p", { id: "result", role: "status" });
  let load = null;
  const act = async (what, seqs) => {
    try {
      const body = await post(base + "/" + what, seqs ? { seqs } : {});
      result.textContent = what === "redrive" ? "Redriven: " + body.redriven : "Discarded: " + body.discarded;
      result.className = "";
      await load(generation);
    } catch (err) {
      if (!(err instanceof AuthError)) { result.textContent = err.message; result.className = "error"; }
    }
  };
  const all = el("div", { class: "toolbar" },
    el("button", { id: "redrive-all", type: "button", text: "Redrive all", onclick: () => act("redrive", null) }),
    el("button", { id: "discard-all", type: "button", class: "danger", text: "Discard all", onclick: () => act("discard", null) }));
  document.getElementById("view").replaceChildren(el("h1", { text: "Dead letters of " + consumer }), all, result, holder);
  load = async (mine) => {
    const data = await api(base + "?limit=100");
    if (mine !== generation) return;
    const rows = data.data.map((m) => el("tr", { "data-seq": m.seq },
      num(m.seq), el("td", { text: m.key }), num(m.delivery_count ?? "–"),
      el("td", { text: m.last_error || "" }),
      el("td", {}, el("pre", { class: "preview", text: preview(m) })),
      el("td", {},
        el("button", { type: "button", class: "redrive", text: "Redrive", onclick: () => act("redrive", [m.seq]) }), " ",
        el("button", { type: "button", class: "discard danger", text: "Discard", onclick: () => act("discard", [m.seq]) }))));
    holder.replaceChildren(rows.length
      ? table([["seq", "num"], ["key"], ["deliveries", "num"], ["last error"], ["payload"], [""]], rows, "dead")
      : el("p", { id: "no-dead", class: "muted", text: "No dead letters." }));
  };
  poll(load);
}

// -- live tail and publish -------------------------------------------------------------------

function tailPage(stream, params) {
  crumbs(["streams", "#/streams"], [stream, "#/streams/" + enc(stream)], ["live tail", null]);
  const pattern = params.get("key_pattern") || "";
  const filter = el("input", { id: "key-pattern", type: "search", placeholder: "key filter, e.g. orders.eu.>", value: pattern, "aria-label": "key filter" });
  filter.addEventListener("change", () => { location.hash = "#/streams/" + enc(stream) + "/tail?key_pattern=" + enc(filter.value.trim()); });
  const list = el("ol", { id: "tail" });
  const state = el("span", { id: "tail-state", class: "muted", text: "connecting" });
  const key = el("input", { id: "publish-key", placeholder: "key (default: the stream name)", "aria-label": "key" });
  const data = el("textarea", { id: "publish-data", rows: 3, placeholder: '{"hello": "world"}', "aria-label": "data" });
  const published = el("p", { id: "published", role: "status" });
  const form = el("form", { class: "publish", id: "publish" }, key, data, el("button", { type: "submit", text: "Publish" }), published);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = { key: key.value.trim() || stream, data: data.value };
    try {
      const body = await post("/api/streams/" + enc(stream) + "/messages", { messages: [message] });
      published.textContent = "Published seq " + body.data.acks[0].seq;
      published.className = "";
    } catch (err) {
      if (!(err instanceof AuthError)) { published.textContent = err.message; published.className = "error"; }
    }
  });
  document.getElementById("view").replaceChildren(
    el("h1", { text: "Live tail of " + stream }), el("div", { class: "toolbar" }, filter, state), list,
    el("h2", { text: "Publish a test event" }), form);
  follow(stream, pattern, list, state);
}

async function follow(stream, pattern, list, state) {
  const controller = new AbortController();
  tail = controller;
  let after = null;
  while (!controller.signal.aborted) {
    let url = "/api/streams/" + enc(stream) + "/messages/sse?event=message";
    if (pattern) url += "&key_pattern=" + enc(pattern);
    if (after !== null) url += "&last_event_id=" + after;
    try {
      const response = await fetch(url, { headers: headers({ Accept: "text/event-stream" }), signal: controller.signal });
      if (response.status === 401) { unauthorized(); return; }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        state.textContent = problem(body, response);
        state.className = "error";
        return;
      }
      state.textContent = "live";
      state.className = "muted";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const seen = onEvent(block, list);
          if (seen !== null) after = seen;
        }
      }
    } catch (err) {
      if (controller.signal.aborted) return;
      state.textContent = "reconnecting: " + err.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// One SSE block: returns its id (the resume point) or null.
function onEvent(block, list) {
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("id:")) id = parseInt(line.slice(3).trim(), 10);
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) {
    const m = JSON.parse(data.join("\n"));
    const text = m.seq + "  " + m.key + "  " + preview(m);
    list.prepend(el("li", { "data-seq": m.seq, "data-key": m.key, text }));
    while (list.children.length > TAIL_ROWS) list.lastChild.remove();
  }
  return Number.isInteger(id) ? id : null;
}

// -- routing and the key -----------------------------------------------------------------------

function route() {
  stop();
  setStatus("");
  document.getElementById("auth").hidden = true;
  document.getElementById("forget").hidden = !apiKey();
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "streams" && parts.length === 2) consumersPage(parts[1]);
  else if (parts[0] === "streams" && parts.length === 3 && parts[2] === "tail") tailPage(parts[1], params);
  else if (parts[0] === "streams" && parts.length === 5 && parts[2] === "consumers" && parts[4] === "dead") deadPage(parts[1], parts[3]);
  else streamsPage(params);
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, document.getElementById("key").value);
  document.getElementById("key").value = "";
  route();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  route();
});
window.addEventListener("hashchange", route);
route();
