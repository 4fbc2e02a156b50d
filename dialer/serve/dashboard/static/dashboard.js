// The live dashboard of `dialer serve`: signs in, follows /api/v1/stream, draws each
// campaign's figures and charts (inline SVG), and pauses or resumes campaigns.
// Plain browser JavaScript, no framework. Data is put in the page as text, never as HTML.
"use strict";

(() => {
  const AUTH_KEY = "dialer.auth";  // sessionStorage: the Authorization header value
  const WHO_KEY = "dialer.who";
  const REPORT_EVERY_MS = 30000;  // the hourly answer rate comes from the report
  const REPORT_RETRY_MS = 5000;  // ... sooner while a campaign has no attempts yet
  const RECONNECT_MS = 2000;
  const TIMELINE_MINUTES = 60;
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = {
    answered_human: "#2e7d32", completed: "#43a047", transferred: "#1565c0",
    answered_machine: "#8e7cc3", no_answer: "#b0bec5", busy: "#f9a825",
    rejected: "#ef6c00", vacant: "#6d4c41", suspended: "#8d6e63", powered_off: "#546e7a",
    unreachable: "#90a4ae", network_error: "#c62828", abandoned: "#d81b60",
    opted_out: "#000000", failed: "#b71c1c",
  };
  const SPARE_COLOURS = ["#00897b", "#5e35b1", "#c0ca33", "#3949ab", "#f4511e", "#6a1b9a"];

  const session = { generation: 0, source: null, reconnect: null, reports: null };
  const cards = new Map();  // campaign name -> Card

  const $ = (id) => document.getElementById(id);

  // --- credentials and requests ------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function basicHeader(username, password) {
    const bytes = new TextEncoder().encode(`${username}:${password}`);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return `Basic ${btoa(binary)}`;
  }

  async function api(method, path, body) {
    const headers = { Authorization: sessionStorage.getItem(AUTH_KEY) || "", Accept: "application/json" };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new HttpError(0, "the service does not answer");
    }
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) {
      signOut("The service did not accept those credentials (401): sign in again.");
    }
    if (!response.ok) {
      throw new HttpError(response.status, answer.error || `${response.status} ${response.statusText}`);
    }
    return answer;
  }

  // --- signing in and out --------------------------------------------------------------------

  function readForm() {
    const method = document.querySelector('input[name="method"]:checked').value;
    if (method === "key") {
      const key = $("api-key").value.trim();
      if (!key) return null;
      // a key's id (dk_<id>_...) is public; the secret after it is not shown
      return { header: `Bearer ${key}`, who: `API key ${key.split("_").slice(0, 2).join("_")}` };
    }
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username || !password) return null;
    return { header: basicHeader(username, password), who: username };
  }

  function onSignIn(event) {
    event.preventDefault();
    const form = readForm();
    if (form === null) {
      $("signin-error").textContent = "Enter an API key, or a username and a password.";
      return;
    }
    sessionStorage.setItem(AUTH_KEY, form.header);
    sessionStorage.setItem(WHO_KEY, form.who);
    $("api-key").value = "";
    $("password").value = "";
    start();
  }

  function start() {
    session.generation += 1;
    $("signin").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    $("signin-error").textContent = "";
    $("who").textContent = sessionStorage.getItem(WHO_KEY) || "";
    setConnection("connecting", "connecting…");
    connect(session.generation);
    clearInterval(session.reports);
    session.reports = setInterval(refreshReports, REPORT_RETRY_MS);
  }

  function signOut(message) {
    session.generation += 1;
    closeStream();
    clearTimeout(session.reconnect);
    clearInterval(session.reports);
    sessionStorage.removeItem(AUTH_KEY);
    sessionStorage.removeItem(WHO_KEY);
    for (const card of cards.values()) card.root.remove();
    cards.clear();
    $("board").hidden = true;
    $("signin").hidden = false;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("updated").textContent = "";
    $("signin-error").textContent = message || "";
    setConnection("off", "signed out");
  }

  // --- the event stream ---------------------------------------------------------------------

  function setConnection(state, text) {
    const badge = $("connection");
    badge.dataset.state = state;
    badge.textContent = text;
  }

  function closeStream() {
    if (session.source !== null) session.source.close();
    session.source = null;
  }

  async function connect(generation) {
    closeStream();
    let ticket;
    try {
      ticket = await api("POST", "/api/v1/stream/token");
    } catch (error) {
      if (error.status !== 401) retryLater(generation, error.message);
      return;
    }
    if (generation !== session.generation) return;  // signed out meanwhile
    const source = new EventSource(`/api/v1/stream?token=${encodeURIComponent(ticket.token)}`);
    session.source = source;
    source.addEventListener("open", () => setConnection("live", "live"));
    source.addEventListener("status", (event) => render(JSON.parse(event.data)));
    source.addEventListener("bye", () => connect(generation));  // a fresh token, a new stream
    source.addEventListener("error", () => {
      if (session.source === source) retryLater(generation, "connection lost");
    });
  }

  function retryLater(generation, why) {
    closeStream();
    if (generation !== session.generation) return;
    setConnection("retrying", `reconnecting (${why})`);
    clearTimeout(session.reconnect);
    session.reconnect = setTimeout(() => connect(generation), RECONNECT_MS);
  }

  function render(statuses) {
    const seen = new Set();
    for (const status of statuses) {
      seen.add(status.campaign);
      let card = cards.get(status.campaign);
      if (card === undefined) {
        card = new Card(status.campaign);
        cards.set(status.campaign, card);
        $("campaigns").append(card.root);
        card.refreshReport();
      }
      card.update(status);
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.root.remove();
        cards.delete(name);
      }
    }
    $("empty").hidden = statuses.length > 0;
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function refreshReports() {
    for (const card of cards.values()) {
      if (card.reportDue()) card.refreshReport();
    }
  }

  // --- one campaign ----------------------------------------------------------------------------

  class Card {
    constructor(name) {
      this.name = name;
      this.root = $("card-template").content.firstElementChild.cloneNode(true);
      this.root.dataset.campaign = name;
      this.reportAt = 0;
      this.reportEmpty = true;
      for (const button of this.root.querySelectorAll("button[data-action]")) {
        button.addEventListener("click", () => this.act(button.dataset.action));
      }
    }

    field(name) {
      return this.root.querySelector(`[data-field="${name}"]`);
    }

    button(action) {
      return this.root.querySelector(`[data-action="${action}"]`);
    }

    set(name, text) {
      this.field(name).textContent = text;
    }

    update(status) {
      this.set("campaign", status.campaign);
      this.set("state", status.state);
      this.field("state").dataset.state = status.state;
      this.set("reason", status.reason || "");
      this.set("mode", status.mode || "");
      this.set("at", status.at ? `${status.at.slice(0, 16).replace("T", " ")} UTC` : "");
      this.set("dials", count(status.dials));
      this.set("answers", count(status.answers));
      this.set("dial_level", (status.dial_level || 0).toFixed(2));
      for (const stage of ["dialing", "waiting", "live"]) {
        this.set(`calls.${stage}`, count((status.calls || {})[stage]));
      }
      this.showAgents(status.agents || {});
      this.showAbandon(status);
      this.button("pause").disabled = status.state !== "running";
      this.button("resume").disabled = status.state !== "paused";
      drawTimeline(this.field("timeline"), this.field("legend"), status.timeline || []);
      this.showTrunks(status.trunks || []);
      this.showCallerIds(status.caller_ids || []);
    }

    showAgents(agents) {
      const parts = Object.entries(agents).map(([state, n]) => {
        const part = document.createElement("span");
        const figure = document.createElement("b");
        figure.textContent = count(n);
        part.append(figure, ` ${state.replaceAll("_", " ")}`);
        return part;
      });
      this.field("agents").replaceChildren(...(parts.length ? parts : ["none logged in"]));
    }

    showAbandon(status) {
      const target = status.abandon_target || 0;
      const run = status.abandon_rate || 0;
      const windowRate = status.window_abandon_rate || 0;
      this.set("abandon_rate", percent(run));
      this.set("window_abandon_rate", percent(windowRate));
      this.set("abandon_target", target > 0 ? percent(target) : "–");
      const over = target > 0 && (run > target || windowRate > target);
      this.field("abandon").classList.toggle("over", over);
      this.field("abandon").dataset.over = String(over);
    }

    showTrunks(trunks) {
      const rows = trunks.map((t) => row([
        t.trunk, t.tier, badge(t.state), percent(t.failure_rate),
        `${count(t.channels_in_use)} / ${count(t.channels)}`,
      ]));
      this.field("trunks").replaceChildren(...(rows.length ? rows : [noRows(5, "No trunks yet.")]));
    }

    showCallerIds(callerIds) {
      // a caller ID is named by its city and place in the pool: no number in the page
      const rows = callerIds.map((c, i) => row([
        `${c.city || "caller ID"} #${i + 1}`, badge(c.state),
        `${count(c.calls_today)} / ${count(c.cap_today)}`,
        c.answer_rate === null || c.answer_rate === undefined ? "–" : percent(c.answer_rate),
      ]));
      const none = noRows(4, "No managed caller-ID pool in this run.");
      this.field("caller_ids").replaceChildren(...(rows.length ? rows : [none]));
    }

    async act(action) {
      const error = this.field("action-error");
      error.hidden = true;
      const path = `/api/v1/campaigns/${encodeURIComponent(this.name)}/${action}`;
      const body = action === "pause" ? { reason: "paused from the dashboard" } : undefined;
      try {
        this.update(await api("POST", path, body));
      } catch (failure) {
        if (failure.status === 401) return;
        error.textContent = `${action[0].toUpperCase()}${action.slice(1)} failed: ${failure.message}`;
        error.hidden = false;
      }
    }

    reportDue() {
      const wait = this.reportEmpty ? REPORT_RETRY_MS : REPORT_EVERY_MS;
      return Date.now() - this.reportAt >= wait - 100;
    }

    async refreshReport() {
      this.reportAt = Date.now();
      const note = this.field("hourly-note");
      try {
        const report = await api("GET", `/api/v1/campaigns/${encodeURIComponent(this.name)}/report`);
        const hours = report.answer_rate_by_hour || [];
        this.reportEmpty = hours.length === 0;
        drawHourly(this.field("hourly"), hours);
        note.textContent = this.reportEmpty ? ""
          : `${count(report.attempts)} attempts, ${percent(report.contact_rate)} answered by a person.`;
      } catch (failure) {
        if (failure.status === 401) return;
        this.reportEmpty = false;  // do not ask again before the usual interval
        note.textContent = failure.status === 403
          ? `The report is not shown: ${failure.message}.` : `The report failed: ${failure.message}.`;
      }
    }
  }

  // --- small helpers ---------------------------------------------------------------------------

  function count(n) {
    return (n || 0).toLocaleString("en-US");
  }

  function percent(rate) {
    return `${((rate || 0) * 100).toFixed(rate >= 0.1 ? 1 : 2)}%`;
  }

  function badge(state) {
    const span = document.createElement("span");
    span.className = "badge";
    span.dataset.state = state;
    span.textContent = state.replaceAll("_", " ");
    return span;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    cells.forEach((cell, i) => {
      const td = document.createElement("td");
      if (i >= cells.length - 2) td.className = "num";
      td.append(cell);
      tr.append(td);
    });
    return tr;
  }

  function rank(disposition) {  // known dispositions in a fixed order, others after them
    const known = Object.keys(COLOURS).indexOf(disposition);
    return known < 0 ? Infinity : known;
  }

  function noRows(columns, message) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns;
    td.className = "muted none";
    td.textContent = message;
    tr.append(td);
    return tr;
  }

  function colourOf(name) {
    if (COLOURS[name]) return COLOURS[name];
    let hash = 0;
    for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return SPARE_COLOURS[hash % SPARE_COLOURS.length];
  }

  // --- charts (inline SVG) -----------------------------------------------------------------------

  function svgNode(name, attrs, parent, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.append(node);
    return node;
  }

  function niceCeiling(value) {
    const step = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 5, 10]) if (m * step >= value) return m * step;
    return 10 * step;
  }

  // A frame with a y axis from 0 to `top`; returns the plot box and a y scale.
  function frame(svg, top, label) {
    const box = { width: 560, height: 190, left: 44, right: 8, top: 10, bottom: 24 };
    svg.setAttribute("viewBox", `0 0 ${box.width} ${box.height}`);
    svg.replaceChildren();
    const plotHeight = box.height - box.top - box.bottom;
    const y = (v) => box.top + plotHeight * (1 - v / top);
    for (const v of [0, top / 2, top]) {
      svgNode("line", { x1: box.left, x2: box.width - box.right, y1: y(v), y2: y(v), class: "grid" }, svg);
      svgNode("text", { x: box.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, svg, label(v));
    }
    return { box, y, plotWidth: box.width - box.left - box.right };
  }

  function emptyChart(svg, message) {
    frame(svg, 1, () => "");
    svgNode("text", { x: 280, y: 95, class: "empty", "text-anchor": "middle" }, svg, message);
  }

  function drawTimeline(svg, legend, timeline) {
    const rows = timeline.slice(-TIMELINE_MINUTES);
    const names = [...new Set(rows.flatMap((r) => Object.keys(r.dispositions)))].sort(
      (a, b) => rank(a) - rank(b) || a.localeCompare(b));
    legend.replaceChildren(...names.map(legendItem));
    const totals = rows.map((r) => Object.values(r.dispositions).reduce((a, b) => a + b, 0));
    if (!rows.length || Math.max(...totals) === 0) {
      emptyChart(svg, "No outcomes yet");
      return;
    }
    const top = niceCeiling(Math.max(...totals));
    const { box, y, plotWidth } = frame(svg, top, (v) => String(Math.round(v)));
    const slot = plotWidth / Math.max(rows.length, 30);
    rows.forEach((r, i) => {
      const x = box.left + i * slot;
      let level = 0;
      for (const name of names) {
        const n = r.dispositions[name] || 0;
        if (!n) continue;
        const bar = svgNode("rect", {
          x: x + slot * 0.1, width: Math.max(slot * 0.8, 1), y: y(level + n),
          height: y(level) - y(level + n), fill: colourOf(name), class: "bar",
        }, svg);
        svgNode("title", {}, bar, `${r.minute.slice(11, 16)} ${name}: ${n}`);
        level += n;
      }
      if (i % 10 === 0) {
        svgNode("text", { x: x + slot / 2, y: box.height - 6, class: "axis", "text-anchor": "middle" },
          svg, r.minute.slice(11, 16));
      }
    });
  }

  function legendItem(name) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = colourOf(name);
    item.append(swatch, name.replaceAll("_", " "));
    return item;
  }

  function drawHourly(svg, hours) {
    if (!hours.length) {
      emptyChart(svg, "No attempts yet");
      return;
    }
    // scaled to the best hour (answer rates are often a few per cent), at most 100%
    const top = Math.min(1, niceCeiling(Math.max(0.01, ...hours.map((h) => h.rate))));
    const { box, y, plotWidth } = frame(svg, top, (v) => `${+(v * 100).toFixed(1)}%`);
    const slot = plotWidth / 24;
    const byHour = new Map(hours.map((h) => [h.hour, h]));
    for (let hour = 0; hour < 24; hour += 1) {
      const x = box.left + hour * slot;
      const h = byHour.get(hour);
      if (h !== undefined && h.attempts > 0) {
        const bar = svgNode("rect", {
          x: x + slot * 0.15, width: slot * 0.7, y: y(h.rate), height: y(0) - y(h.rate),
          fill: "#1565c0", class: "bar",
        }, svg);
        svgNode("title", {}, bar, `${hour}:00 — ${percent(h.rate)} of ${count(h.attempts)} attempts`);
      }
      if (hour % 3 === 0) {
        svgNode("text", { x: x + slot / 2, y: box.height - 6, class: "axis", "text-anchor": "middle" },
          svg, `${hour}h`);
      }
    }
  }

  // --- start ------------------------------------------------------------------------------------

  function onMethodChange() {
    const byKey = document.querySelector('input[name="method"]:checked').value === "key";
    $("key-fields").hidden = !byKey;
    $("user-fields").hidden = byKey;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", onSignIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    for (const radio of document.querySelectorAll('input[name="method"]')) {
      radio.addEventListener("change", onMethodChange);
    }
    if (sessionStorage.getItem(AUTH_KEY)) start();
  });
})();
