// The agent page: cards and the day's calls, from /api/agent/EXT/events (Server-Sent Events).
// Every value from the network is set with textContent (never parsed as HTML) and its control
// and format characters are made visible first, as the terminal popup does.
"use strict";
(function () {
  const root = document.getElementById("agent");
  const ext = root.dataset.ext;
  const cards = document.getElementById("cards");
  const dayBody = document.querySelector("#day tbody");
  const dayEmpty = document.getElementById("day-empty");
  const linkEl = document.getElementById("link");
  const notifyButton = document.getElementById("notify");
  const SHOW_ENDED_FOR = 30;
  const legs = new Map(); // leg_uuid -> the latest record
  const crm = new Map(); // leg_uuid -> CRM link
  let day = []; // ended records, newest first
  let offset = 0; // the switch's clock minus this browser's, in seconds

  // C0 -> control pictures, DEL -> ␡, other controls and format characters -> <U+XXXX>
  // (eslkit/safe_text.py); at most 256 characters.
  function shown(value) {
    let text = value === null || value === undefined ? "" : String(value);
    if (text.length > 256) text = text.slice(0, 255) + "…";
    return text.replace(/[\p{Cc}\p{Cf}\p{Cs}\p{Cn}\p{Zl}\p{Zp}]/gu, function (ch) {
      const code = ch.codePointAt(0);
      if (code < 0x20) return String.fromCodePoint(0x2400 + code);
      if (code === 0x7f) return "\u2421";
      return "<U+" + code.toString(16).toUpperCase().padStart(4, "0") + ">";
    });
  }
  function now() { return Date.now() / 1000 + offset; }
  function seconds(iso) { return iso ? Date.parse(iso) / 1000 : null; }
  function clock(span) {
    if (span === null || span === undefined || isNaN(span)) return "–";
    const s = Math.max(0, Math.round(span));
    const mm = String(Math.floor(s / 60) % 60).padStart(2, "0"), ss = String(s % 60).padStart(2, "0");
    return s >= 3600 ? Math.floor(s / 3600) + ":" + mm + ":" + ss : Math.floor(s / 60) + ":" + ss;
  }
  // (number, name) of the party the agent talks to (eslkit.views.popup.party).
  function party(r) {
    if (r.direction === "outgoing") return [r.other_number, r.other_name];
    return [r.other_number || r.caller_number, r.other_name || r.caller_name];
  }
  function label(r) {
    if (r.state === "ringing") return ["Ringing", "ringing"];
    if (r.state === "answered") return r.on_hold ? ["On hold", "hold"] : ["Connected", "answered"];
    switch (r.outcome) {
      case "answered": return ["Ended", "ended"];
      case "answered_elsewhere": return ["Answered elsewhere", "elsewhere"];
      case "missed": return ["Missed", "missed"];
      case "busy": return ["Busy", "busy"];
      default: return ["Failed", "failed"];
    }
  }
  function outcome(r) {
    const parts = [r.outcome === "answered" ? "talked " + clock(r.talk_seconds) : "rang " + clock(r.ring_seconds)];
    if (r.hangup_cause) parts.push(r.hangup_cause);
    return shown(parts.join(" · "));
  }
  function set(el, value) {
    const row = el.closest("dd");
    (row ? row.querySelector("bdi") || row : el).textContent = shown(value);
    if (row) { row.hidden = !value; row.previousElementSibling.hidden = !value; }
  }

  function card(r) {
    const el = document.getElementById("card").content.firstElementChild.cloneNode(true);
    const [text, style] = label(r);
    const [number, name] = party(r);
    el.dataset.leg = r.leg_uuid;
    el.dataset.state = r.state;
    el.classList.add(style);
    el.querySelector(".state").textContent = text;
    el.querySelector(".badge").hidden = !(r.state === "answered" && r.on_hold);
    if (r.direction === "outgoing") {
      el.querySelector(".name").textContent = "To " + shown(name || "");
      el.querySelector(".number").textContent = shown(number || "…");
    } else {
      el.querySelector(".name").textContent = shown(name || "(no name)");
      el.querySelector(".number").textContent = shown(number || "unknown");
    }
    set(el.querySelector(".contact"), r.contact ? (r.contact.name || r.contact.number) : "");
    set(el.querySelector(".queue"), r.queue);
    set(el.querySelector(".from"), r.transferred_from ? r.transferred_from + " (transferred)" : "");
    const out = el.querySelector(".outcome");
    out.textContent = r.state === "ended" ? outcome(r) : "";
    out.hidden = out.previousElementSibling.hidden = r.state !== "ended";
    const link = crm.get(r.leg_uuid);
    const a = el.querySelector(".crm");
    if (link && r.state !== "ended" && /^https?:\/\//i.test(link)) { a.href = link; a.hidden = false; }
    if (window.eslkitControls) window.eslkitControls(el.querySelector(".controls"), r);
    return el;
  }
  function timers() {
    const t = now();
    for (const el of cards.querySelectorAll(".card")) {
      const r = legs.get(el.dataset.leg);
      if (!r) continue;
      el.querySelector(".timer").textContent = r.state === "ended" ? "" : clock(t - seconds(r.time));
    }
  }
  function draw() {
    // The calls up, oldest first; with none, the last one that ended (for 30 s), as the
    // terminal popup shows them.
    const t = now();
    let shownLegs = [];
    let last = null;
    for (const r of legs.values()) {
      if (r.state !== "ended") shownLegs.push(r);
      else if (t - seconds(r.time) > SHOW_ENDED_FOR) legs.delete(r.leg_uuid);
      else if (!last || seconds(r.time) >= seconds(last.time)) last = r;
    }
    shownLegs.sort(function (a, b) { return seconds(a.time) - seconds(b.time); });
    if (!shownLegs.length && last) shownLegs = [last];
    cards.replaceChildren(...shownLegs.map(card));
    if (!shownLegs.length) {
      const idle = document.createElement("p");
      idle.className = "idle";
      idle.textContent = "Waiting for calls…";
      cards.append(idle);
    }
    const ringing = shownLegs.some(function (r) { return r.state === "ringing"; });
    document.title = (ringing ? "☎ Ringing · " : "") + ext + " · eslkit";
    timers();
  }
  function drawDay() {
    dayBody.replaceChildren(...day.map(function (r) {
      const tr = document.createElement("tr");
      const [number, name] = party(r);
      const [text, style] = r.outcome === "answered" ? ["Answered", "ended"] : label(r);
      const when = new Date((seconds(r.time) - offset) * 1000);
      const cells = [when.toLocaleTimeString([], {hour12: false}),
                     (r.direction === "outgoing" ? "→ " : "") + shown(number || "unknown"),
                     shown(name || ""), text,
                     clock(r.outcome === "answered" ? r.talk_seconds : r.ring_seconds)];
      for (const value of cells) {
        const td = document.createElement("td");
        const bdi = document.createElement("bdi");
        bdi.textContent = value;
        td.append(bdi);
        tr.append(td);
      }
      tr.className = style;
      tr.dataset.leg = r.leg_uuid;
      return tr;
    }));
    dayEmpty.hidden = day.length > 0;
  }
  function link(state) {
    linkEl.dataset.connected = state.connected ? "true" : "false";
    linkEl.textContent = (state.connected ? "● " : "○ ") + shown(state.text);
  }
  function notify(r) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const [number, name] = party(r);
    const body = [shown(number || ""), r.queue ? "queue " + shown(r.queue) : ""].filter(Boolean).join(" · ");
    try {
      new Notification("Call for " + ext + ": " + shown(name || number || "unknown"), {body: body, tag: r.leg_uuid});
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  function onSnapshot(data) {
    offset = data.now - Date.now() / 1000;
    legs.clear();
    crm.clear();
    for (const [uuid, url] of Object.entries(data.crm || {})) crm.set(uuid, url);
    for (const r of data.calls) legs.set(r.leg_uuid, r);
    day = data.day;
    link(data.link);
    draw();
    drawDay();
  }
  function onLeg(r) {
    const before = legs.get(r.leg_uuid);
    legs.set(r.leg_uuid, r);
    if (r.state === "ringing" && (!before || before.state !== "ringing")) notify(r);
    if (r.state === "ended") {
      day = [r].concat(day.filter(function (d) { return d.leg_uuid !== r.leg_uuid; }));
      drawDay();
    }
    draw();
  }

  function connect() {
    const events = new EventSource("/api/agent/" + encodeURIComponent(ext) + "/events");
    events.addEventListener("snapshot", function (e) { onSnapshot(JSON.parse(e.data)); });
    events.addEventListener("leg", function (e) { onLeg(JSON.parse(e.data)); });
    events.addEventListener("crm", function (e) { const c = JSON.parse(e.data); crm.set(c.leg_uuid, c.url); });
    events.addEventListener("link", function (e) { link(JSON.parse(e.data)); });
    events.addEventListener("clock", function (e) { offset = JSON.parse(e.data).now - Date.now() / 1000; });
    events.onerror = function () {
      link({connected: false, text: "reconnecting to eslkit serve…"});
      // The browser retries by itself; a stream refused (logged out) is closed: show the login.
      if (events.readyState === EventSource.CLOSED) setTimeout(function () { location.reload(); }, 2000);
    };
  }

  if ("Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(function () { notifyButton.hidden = true; });
    });
  }
  setInterval(function () { if (legs.size) draw(); }, 1000);
  connect();
})();
