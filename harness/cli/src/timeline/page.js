// The timeline page: reads the run's compact JSON from the page itself (no network) and
// draws on demand. Dense lanes are aggregated per pixel column, message paths are only
// decoded when one is asked for, so a 100 000-message run stays responsive.
"use strict";

// The data is gzipped JSON in base64; the browser's own DecompressionStream unpacks it.
async function loadData() {
  const packed = atob(document.getElementById("data").textContent.trim());
  const bytes = new Uint8Array(packed.length);
  for (let i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

loadData().then(show, (error) => {
  document.getElementById("summary").textContent = `this browser cannot unpack the data: ${error}`;
});

function show(data) {
  const meta = data.meta;
  const S = data.strings;
  const hosts = data.hosts;
  const EX = 7; // fields per exchange: at, until, from, to, status, what, count
  const exchangeCount = data.ex.length / EX;
  const end = Math.max(1, meta.simulated_ms);
  const view = { from: 0, to: end };
  const $ = (id) => document.getElementById(id);
  const LEFT = 90, AXIS = 22, LANE = 34, MESSAGE_LANE = 26;
  let selected = null; // index into data.messages.ids
  let providerIndex = null; // provider id -> message index, built when first needed

  const faultColours = {
    crash: "rgba(198,40,40,0.28)", crash_after_accept: "rgba(198,40,40,0.28)", partition: "rgba(239,108,0,0.25)",
    hold: "rgba(249,168,37,0.30)", outage: "rgba(106,27,154,0.22)",
  };
  const faultColour = (kind) => faultColours[kind.split(" ")[0]] || "rgba(106,27,154,0.8)";
  const statusColour = (status) =>
    status === 0 ? "#555" : status < 300 ? "rgba(21,101,192,0.55)" : status < 500 ? "#ef6c00" : "#c62828";

  function text(node, value) { node.textContent = value; return node; }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => (k === "onclick" ? (node.onclick = v) : node.setAttribute(k, v)));
    children.forEach((child) => node.append(child));
    return node;
  }
  const ms = (t) => `${Math.round(t).toLocaleString("en")} ms`;

  // ---- header and violation -------------------------------------------------------------
  function header() {
    text($("title"), `${meta.scenario} · seed ${meta.seed}`);
    const verdict = data.violation ? el("span", { class: "verdict-fail" }, "FAIL") : el("span", { class: "verdict-pass" }, "PASS");
    $("summary").replaceChildren(verdict, ` · ${ms(meta.simulated_ms)} simulated · ${data.messages.ids.length} messages · ` +
      `${exchangeCount} exchanges · trace ${meta.trace_hash.slice(0, 16)}`);
    text($("reproduce"), meta.reproduce);
    if (!data.violation) return;
    const v = data.violation;
    $("violation").hidden = false;
    text($("violation-invariant"), v.invariant);
    text($("violation-time"), ms(v.at_ms)).onclick = () => focusTime(v.at_ms);
    linkify($("violation-message"), v.message);
    v.evidence.forEach((line) => $("evidence").append(linkify(el("li", { class: "evidence" }), line)));
  }

  // Evidence names messages (msg_1_2), provider ids (M00000012, SM00000003) and times
  // (at 1234 ms): each becomes a link to the message's path or to that moment.
  function linkify(node, line) {
    const pattern = /(msg_\d+_\d+)|\b((?:M|SM|IB)\d{6,})\b|(\d+) ms/g;
    let last = 0, match;
    while ((match = pattern.exec(line))) {
      node.append(line.slice(last, match.index));
      const [whole, message, providerId, at] = match;
      const link = el("button", { class: "link evidence-link" }, whole);
      if (message) link.onclick = () => selectMessage(message);
      else if (providerId) link.onclick = () => selectByProviderId(providerId);
      else link.onclick = () => focusTime(Number(at));
      node.append(link);
      last = match.index + whole.length;
    }
    node.append(line.slice(last));
    return node;
  }

  // ---- the main canvas ------------------------------------------------------------------
  const canvas = $("timeline");
  const context = canvas.getContext("2d");
  let width = 0;
  const lanesHeight = () => AXIS + hosts.length * LANE + (selected === null ? 0 : MESSAGE_LANE);
  const x = (t) => LEFT + ((t - view.from) / (view.to - view.from)) * (width - LEFT);
  const laneY = (host) => AXIS + host * LANE + LANE / 2;

  function draw() {
    width = canvas.parentElement.clientWidth;
    const height = lanesHeight() + 4;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio; canvas.height = height * ratio; canvas.style.height = `${height}px`;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    context.font = "12px system-ui, sans-serif";
    drawPhases(height);
    drawLanes();
    drawFaults();
    drawExchanges();
    drawAxis();
    drawSelected();
    drawViolation(height);
    text($("window"), `${ms(view.from)} – ${ms(view.to)}`);
    drawCampaigns();
  }

  function drawPhases(height) {
    data.phases.forEach(([name, from, until]) => {
      const left = Math.max(LEFT, x(from)), right = Math.min(width, x(until));
      if (right <= left) return;
      context.fillStyle = name === "faults" ? "#fff8f1" : "#f1fbf3";
      context.fillRect(left, AXIS, right - left, height - AXIS);
      context.fillStyle = "#9aa3ad";
      context.fillText(name === "faults" ? "fault phase" : "liveness (healed)", left + 4, AXIS + 11);
      if (name === "liveness" && from > view.from && from < view.to) {
        context.strokeStyle = "#2e7d32"; context.setLineDash([4, 3]);
        context.beginPath(); context.moveTo(x(from), AXIS); context.lineTo(x(from), height); context.stroke();
        context.setLineDash([]);
        context.fillStyle = "#2e7d32"; context.fillText("heal", x(from) + 3, AXIS + 24);
      }
    });
  }

  function drawLanes() {
    context.fillStyle = "#1d232b";
    hosts.forEach((host, i) => {
      context.fillText(host, 6, laneY(i) + 4);
      context.strokeStyle = "#e3e6ea";
      context.beginPath(); context.moveTo(LEFT, laneY(i)); context.lineTo(width, laneY(i)); context.stroke();
    });
  }

  function drawFaults() {
    data.faults.forEach(([kind, lanes, from, until]) => {
      const to = until === null ? from : until;
      if (to < view.from || from > view.to) return;
      context.fillStyle = faultColour(kind);
      lanes.forEach((lane) => {
        const top = AXIS + lane * LANE + 3;
        if (until === null) {
          const at = x(from);
          context.beginPath(); context.moveTo(at - 4, top); context.lineTo(at + 4, top); context.lineTo(at, top + 8); context.fill();
        } else {
          context.fillRect(x(from), top, Math.max(2, x(to) - x(from)), LANE - 6);
          context.fillStyle = "#444"; context.fillText(kind, Math.max(LEFT, x(from)) + 3, top + 11);
          context.fillStyle = faultColour(kind);
        }
      });
    });
  }

  // Exchanges in view: drawn one by one when few, else counted per pixel column and lane.
  function visibleExchanges() {
    const found = [];
    for (let i = 0; i < exchangeCount; i++) {
      const at = data.ex[i * EX], until = data.ex[i * EX + 1];
      if (until >= view.from && at <= view.to) found.push(i);
    }
    return found;
  }

  function drawExchanges() {
    const visible = visibleExchanges();
    if (visible.length <= 4000) {
      visible.forEach((i) => {
        const [at, until, from, to, status] = data.ex.slice(i * EX, i * EX + 5);
        context.strokeStyle = statusColour(status);
        context.beginPath(); context.moveTo(x(at), laneY(from)); context.lineTo(x(until), laneY(to)); context.stroke();
        context.fillStyle = statusColour(status);
        context.fillRect(x(until) - 1.5, laneY(to) - 1.5, 3, 3);
      });
      return;
    }
    const columns = Math.max(1, Math.floor(width - LEFT));
    const counts = hosts.map(() => new Float64Array(columns));
    const failures = hosts.map(() => new Float64Array(columns));
    visible.forEach((i) => {
      const until = data.ex[i * EX + 1], from = data.ex[i * EX + 2], to = data.ex[i * EX + 3];
      const status = data.ex[i * EX + 4], count = data.ex[i * EX + 6];
      const column = Math.min(columns - 1, Math.max(0, Math.floor(x(until) - LEFT)));
      [from, to].forEach((lane) => {
        counts[lane][column] += count;
        if (status === 0 || status >= 400) failures[lane][column] += count;
      });
    });
    const peak = Math.max(1, ...counts.map((lane) => Math.max(...lane)));
    hosts.forEach((_, lane) => {
      for (let column = 0; column < columns; column++) {
        const all = counts[lane][column];
        if (!all) continue;
        const bar = Math.max(1, (Math.sqrt(all) / Math.sqrt(peak)) * (LANE - 8));
        const bad = (failures[lane][column] / all) * bar;
        context.fillStyle = "rgba(21,101,192,0.6)";
        context.fillRect(LEFT + column, laneY(lane) + LANE / 2 - 4 - bar, 1, bar - bad);
        context.fillStyle = "#c62828";
        context.fillRect(LEFT + column, laneY(lane) + LANE / 2 - 4 - bad, 1, bad);
      }
    });
    context.fillStyle = "#66707c";
    context.fillText(`${visible.length} exchanges: requests per pixel (zoom in for each one)`, LEFT + 4, AXIS + hosts.length * LANE - 4);
  }

  function drawAxis() {
    context.fillStyle = "#fff"; context.fillRect(0, 0, width, AXIS);
    const span = view.to - view.from;
    const step = niceStep(span / Math.max(1, (width - LEFT) / 110));
    context.fillStyle = "#66707c"; context.strokeStyle = "#c5cad1";
    for (let t = Math.ceil(view.from / step) * step; t <= view.to; t += step) {
      context.beginPath(); context.moveTo(x(t), AXIS - 5); context.lineTo(x(t), AXIS); context.stroke();
      if (x(t) + 50 < width) context.fillText(t >= 10000 ? `${t / 1000} s` : `${t} ms`, x(t) + 2, AXIS - 8);
    }
  }

  function niceStep(raw) {
    const power = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) || power * 10;
  }

  function drawViolation(height) {
    const marker = $("violation-marker");
    if (!data.violation) return;
    const at = data.violation.at_ms;
    const inView = at >= view.from && at <= view.to;
    marker.hidden = false;
    marker.textContent = `✖ ${data.violation.invariant} @ ${ms(at)}`;
    const half = marker.offsetWidth / 2 + 2;
    marker.style.left = `${Math.min(Math.max(x(Math.min(Math.max(at, view.from), view.to)), LEFT + half), width - half)}px`;
    marker.style.top = `${AXIS + 1}px`;
    marker.style.opacity = inView ? "1" : "0.55";
    if (!inView) return;
    context.strokeStyle = "#c62828"; context.lineWidth = 2;
    context.beginPath(); context.moveTo(x(at), AXIS); context.lineTo(x(at), height); context.stroke();
    context.lineWidth = 1;
  }

  function drawSelected() {
    if (selected === null) return;
    const top = AXIS + hosts.length * LANE;
    context.fillStyle = "#fffde7"; context.fillRect(LEFT, top, width - LEFT, MESSAGE_LANE);
    context.fillStyle = "#1d232b"; context.fillText(data.messages.ids[selected], 6, top + 16);
    const events = data.messages.ev[selected];
    for (let i = 0; i < events.length; i += 3) {
      const at = events[i], kind = data.kinds[events[i + 1]];
      if (at < view.from || at > view.to) continue;
      context.fillStyle = { accepted: "#6a1b9a", report: "#00695c", claimed: "#1565c0" }[kind] || "#444";
      context.beginPath(); context.arc(x(at), top + MESSAGE_LANE / 2, 4, 0, 2 * Math.PI); context.fill();
    }
  }

  // ---- campaign plots -------------------------------------------------------------------
  const series = [["sent", 4, "#1565c0"], ["delivered", 5, "#2e7d32"], ["failed", 6, "#c62828"],
    ["queued", 2, "#9e9e9e"], ["unknown", 7, "#ef6c00"], ["progress %", 8, "#6a1b9a"]];
  const CS = 9; // fields per sample: at, total, queued, submitting, sent, delivered, failed, unknown, progress

  function setUpCampaigns() {
    data.campaigns.forEach((campaign, i) => {
      const statuses = campaign.statuses.map(([at, from, to]) => `${from}→${to} @ ${ms(at)}`).join(", ");
      const box = el("div", { class: "campaign" },
        el("div", {}, el("b", {}, `${campaign.name} (${campaign.id})`), ` ${statuses}`),
        el("canvas", { id: `campaign-${i}`, width: 460, height: 130 }),
        el("div", { class: "legend" }, ...series.map(([name, , colour]) =>
          el("span", {}, el("span", { class: "swatch", style: `background:${colour}` }), name))));
      $("campaigns").append(box);
    });
  }

  function drawCampaigns() {
    data.campaigns.forEach((campaign, i) => {
      const plot = $(`campaign-${i}`), c = plot.getContext("2d");
      const W = plot.width, H = plot.height, pad = 30, s = campaign.s;
      c.clearRect(0, 0, W, H);
      let top = 1;
      for (let k = 0; k < s.length; k += CS) top = Math.max(top, s[k + 1]);
      const px = (t) => pad + ((t - view.from) / (view.to - view.from)) * (W - pad - 4);
      const py = (v, max) => H - 14 - (v / max) * (H - 24);
      c.strokeStyle = "#d9dde3"; c.strokeRect(pad, 10, W - pad - 4, H - 24);
      c.fillStyle = "#66707c"; c.font = "10px system-ui";
      c.fillText(String(top), 2, 16); c.fillText("0", 2, H - 14); c.fillText("100%", W - 34, 9);
      series.forEach(([name, field, colour]) => {
        const max = name === "progress %" ? 100 : top;
        c.strokeStyle = colour; c.beginPath();
        let previous = null;
        for (let k = 0; k < s.length; k += CS) {
          const at = Math.min(Math.max(s[k], view.from), view.to), value = py(s[k + field], max);
          if (previous === null) c.moveTo(px(at), value); else { c.lineTo(px(at), previous); c.lineTo(px(at), value); }
          previous = value;
        }
        if (previous !== null) c.lineTo(px(view.to), previous);
        c.stroke();
      });
      const overflow = s.some((v, k) => k % CS === 8 && v > 100);
      if (overflow) { c.fillStyle = "#c62828"; c.fillText("progress above 100%", pad + 4, 22); }
      if (data.violation && data.violation.at_ms >= view.from && data.violation.at_ms <= view.to) {
        c.strokeStyle = "#c62828"; c.beginPath(); c.moveTo(px(data.violation.at_ms), 10); c.lineTo(px(data.violation.at_ms), H - 14); c.stroke();
      }
    });
  }

  // ---- message search and lifecycle -----------------------------------------------------
  function findMessage(id) {
    const ids = data.messages.ids;
    let low = 0, high = ids.length - 1;
    const key = (s) => s.replace(/^msg_/, "").split("_").map(Number);
    const wanted = key(id);
    if (wanted.length !== 2 || wanted.some(Number.isNaN)) return ids.indexOf(id);
    while (low <= high) {
      const middle = (low + high) >> 1, k = key(ids[middle]);
      const order = k[0] - wanted[0] || k[1] - wanted[1];
      if (order === 0) return middle;
      if (order < 0) low = middle + 1; else high = middle - 1;
    }
    return -1;
  }

  function selectByProviderId(providerId) {
    if (providerIndex === null) {
      providerIndex = new Map();
      const accepted = data.kinds.indexOf("accepted");
      data.messages.ev.forEach((events, m) => {
        for (let i = 0; i < events.length; i += 3) if (events[i + 1] === accepted) providerIndex.set(S[events[i + 2]].split(" ")[0], m);
      });
    }
    const m = providerIndex.get(providerId);
    if (m !== undefined) selectMessage(data.messages.ids[m]);
  }

  function selectMessage(id) {
    const index = findMessage(id.trim());
    const box = $("lifecycle");
    box.replaceChildren();
    $("message-search").value = id.trim();
    if (index < 0) { box.append(el("div", { class: "warn", id: "no-such-message" }, `no message ${id}`)); return; }
    selected = index;
    const events = data.messages.ev[index];
    const rows = [];
    let acceptances = 0;
    for (let i = 0; i < events.length; i += 3) {
      const kind = data.kinds[events[i + 1]];
      if (kind === "accepted") acceptances++;
      const time = el("button", { class: "link" }, ms(events[i]));
      const at = events[i];
      time.onclick = () => focusTime(at);
      rows.push(el("tr", { class: kind }, el("td", {}, time), el("td", { class: "kind" }, kind), el("td", { class: "mono" }, S[events[i + 2]])));
    }
    const note = acceptances > 1 ? el("span", { class: "warn" }, ` — accepted ${acceptances} times by the provider`) : "";
    box.append(el("div", { id: "lifecycle-title" }, el("b", {}, data.messages.ids[index]), ` · ${events.length / 3} events`, note),
      el("table", { id: "lifecycle-table" }, el("tr", {}, el("th", {}, "time"), el("th", {}, "what"), el("th", {}, "detail")), ...rows));
    draw();
  }

  function setUpSearch() {
    const input = $("message-search");
    input.addEventListener("input", () => {
      const wanted = input.value.trim();
      const matches = $("matches");
      matches.replaceChildren();
      if (!wanted) return;
      const found = [];
      const ids = data.messages.ids;
      for (let i = 0; i < ids.length && found.length < 12; i++) if (ids[i].startsWith(wanted)) found.push(ids[i]);
      if (!found.length) { matches.append("no match"); return; }
      found.forEach((id) => matches.append(el("button", { class: "link", onclick: () => selectMessage(id) }, id)));
    });
    input.addEventListener("keydown", (event) => { if (event.key === "Enter") selectMessage(input.value); });
  }

  // ---- interaction ----------------------------------------------------------------------
  function focusTime(at) {
    const span = Math.min(end, Math.max(200, (view.to - view.from) / 8));
    view.from = Math.max(0, at - span / 2); view.to = view.from + span;
    draw();
  }

  function setUpInteraction() {
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = canvas.getBoundingClientRect();
      const at = view.from + ((event.clientX - rect.left - LEFT) / (width - LEFT)) * (view.to - view.from);
      const factor = event.deltaY < 0 ? 0.8 : 1.25;
      const span = Math.min(end, Math.max(5, (view.to - view.from) * factor));
      view.from = Math.max(0, Math.min(end - span, at - (at - view.from) * (span / (view.to - view.from))));
      view.to = view.from + span;
      draw();
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("mousedown", (event) => (drag = { x: event.clientX, from: view.from, to: view.to }));
    window.addEventListener("mouseup", () => (drag = null));
    canvas.addEventListener("mousemove", (event) => {
      if (drag) {
        const shift = ((drag.x - event.clientX) / (width - LEFT)) * (drag.to - drag.from);
        const span = drag.to - drag.from;
        view.from = Math.max(0, Math.min(end - span, drag.from + shift)); view.to = view.from + span;
        draw();
      } else hover(event);
    });
    canvas.addEventListener("mouseleave", () => ($("tooltip").hidden = true));
    $("whole-run").onclick = () => { view.from = 0; view.to = end; draw(); };
    $("violation-marker").onclick = () => focusTime(data.violation.at_ms);
    window.addEventListener("resize", draw);
  }

  function hover(event) {
    const rect = canvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    const tip = $("tooltip");
    const visible = visibleExchanges();
    let best = null, distance = 6;
    if (visible.length <= 4000) {
      visible.forEach((i) => {
        const [, until, , to] = data.ex.slice(i * EX, i * EX + 4);
        const d = Math.hypot(x(until) - px, laneY(to) - py);
        if (d < distance) { distance = d; best = i; }
      });
    }
    if (best === null) { tip.hidden = true; return; }
    const [at, until, from, to, status, what, count] = data.ex.slice(best * EX, best * EX + EX);
    tip.textContent = `${hosts[from]} → ${hosts[to]}  ${S[what]}${count > 1 ? ` ×${count}` : ""}\n` +
      `${ms(at)} – ${ms(until)}  answer ${status || "none"}`;
    tip.style.left = `${px + 12}px`; tip.style.top = `${py + 12}px`; tip.hidden = false;
  }

  function legend() {
    const items = [["crash (down until restart)", faultColours.crash], ["partition", faultColours.partition],
      ["hold", faultColours.hold], ["provider outage", faultColours.outage], ["provider fault / crash after accept", "#6a1b9a"],
      ["2xx", statusColour(200)], ["4xx", statusColour(429)], ["5xx", statusColour(503)], ["no answer", statusColour(0)]];
    items.forEach(([name, colour]) => $("legend").append(el("span", {}, el("span", { class: "swatch", style: `background:${colour}` }), name)));
    $("rates").append(data.rates.length ? "fault rates in the fault phase: " : "no fault rates",
      data.rates.map(([name, rate]) => `${name} ${rate.toFixed(3)}`).join(" · "));
  }

  header();
  legend();
  setUpCampaigns();
  setUpSearch();
  setUpInteraction();
  draw();
  if (location.hash.startsWith("#msg_")) selectMessage(location.hash.slice(1));
  window.timelineReady = true;
}
