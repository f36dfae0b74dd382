// The agent page: cards and the day's calls, from /api/agent/EXT/events (Server-Sent Events).
// Every value from the network is set with textContent (never parsed as HTML) and its control
// and format characters are made visible first (text.js), as the terminal popup does.
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
  // leg_uuid -> when its timer started (the ring, then the answer): from eslkit when it knows
  // (a record's own time is its latest change, a hold for instance), else when this page
  // saw the leg enter its state.
  const since = new Map();
  const entered = new Map();
  let day = []; // ended records, newest first
  let offset = 0; // the switch's clock minus this browser's, in seconds

  const {shown, clock} = eslkitText; // text.js
  function now() { return Date.now() / 1000 + offset; }
  function seconds(iso) { return iso ? Date.parse(iso) / 1000 : null; }
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

  // A leg keeps its card element while it is shown, so that a field being typed in (the
  // transfer destination) and the focus survive the updates.
  const template = document.getElementById("card").content.firstElementChild;
  const elements = new Map(); // leg_uuid -> its card
  function card(r) {
    let el = elements.get(r.leg_uuid);
    if (!el) {
      el = template.cloneNode(true);
      el.dataset.leg = r.leg_uuid;
      elements.set(r.leg_uuid, el);
    }
    const [text, style] = label(r);
    const [number, name] = party(r);
    el.dataset.state = r.state;
    el.className = "card " + style;
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
    a.hidden = !(link && r.state !== "ended" && /^https?:\/\//i.test(link));
    if (!a.hidden) a.href = link;
    if (control) control.card(el, r);
    return el;
  }
  function timers() {
    const t = now();
    for (const el of cards.querySelectorAll(".card")) {
      const r = legs.get(el.dataset.leg);
      if (!r) continue;
      const start = since.has(r.leg_uuid) ? since.get(r.leg_uuid) : entered.get(r.leg_uuid) || seconds(r.time);
      el.querySelector(".timer").textContent = r.state === "ended" ? "" : clock(t - start);
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
      else if (t - seconds(r.time) > SHOW_ENDED_FOR) {
        for (const known of [legs, crm, since, entered]) known.delete(r.leg_uuid);
      }
      else if (!last || seconds(r.time) >= seconds(last.time)) last = r;
    }
    shownLegs.sort(function (a, b) { return seconds(a.time) - seconds(b.time); });
    if (!shownLegs.length && last) shownLegs = [last];
    const wanted = shownLegs.map(card);
    for (const uuid of Array.from(elements.keys())) {
      if (!shownLegs.some(function (r) { return r.leg_uuid === uuid; })) elements.delete(uuid);
    }
    if (!wanted.length) {
      const idle = document.createElement("p");
      idle.className = "idle";
      idle.textContent = "Waiting for calls…";
      wanted.push(idle);
    }
    // Moved only when the order changed: moving a card would take the focus from its field.
    const present = Array.from(cards.children);
    if (present.length !== wanted.length || wanted.some(function (el, i) { return present[i] !== el; })) {
      cards.replaceChildren(...wanted);
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

  // --- the buttons (eslkit serve --control) -----------------------------------------------
  // Each one POSTs {uuid, target} to /api/agent/EXT/calls/ACTION with this page's CSRF
  // token; eslkit checks there that the call is this extension's and the number allowed,
  // and answers with one sentence, shown below the dial field. One request at a time.
  function controls() {
    const result = document.getElementById("control-result");
    const dial = document.getElementById("dial");
    let busy = false;

    function say(kind, text) {
      result.hidden = false;
      result.className = "result " + kind;
      result.textContent = shown(text);
    }
    function enable() {
      for (const b of root.querySelectorAll(".controls button, #dial button")) b.disabled = busy;
    }
    async function act(action, body) {
      if (busy) return;
      busy = true;
      enable();
      say("busy", action + "…");
      try {
        const response = await fetch("/api/agent/" + encodeURIComponent(ext) + "/calls/" + action, {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf},
          body: JSON.stringify(body)});
        let data = {};
        try { data = await response.json(); } catch (e) { /* not JSON: a proxy's error page */ }
        say(response.ok ? "ok" : "failed", data.text || data.error || ("eslkit serve answered " + response.status));
        if (response.status === 401) setTimeout(function () { location.reload(); }, 2000);
        return response.ok;
      } catch (e) {
        say("failed", "eslkit serve did not answer: " + action + " may not have been done.");
        return false;
      } finally {
        busy = false;
        enable();
      }
    }

    cards.addEventListener("click", function (e) {
      const button = e.target.closest("button[data-action]");
      const el = button && button.closest(".card");
      if (el) act(button.dataset.action, {uuid: el.dataset.leg});
    });
    cards.addEventListener("submit", function (e) {
      e.preventDefault();
      const el = e.target.closest(".card");
      const field = e.target.elements.target;
      if (el) act("transfer", {uuid: el.dataset.leg, target: field.value.trim()}).then(function (ok) {
        if (ok) field.value = "";
      });
    });
    dial.addEventListener("submit", function (e) {
      e.preventDefault();
      const field = dial.elements.target;
      act("dial", {target: field.value.trim()}).then(function (ok) { if (ok) field.value = ""; });
    });

    return {
      card: function (el, r) {
        const box = el.querySelector(".controls");
        const answered = r.state === "answered";
        box.hidden = r.state === "ended";
        box.querySelector("[data-action=hold]").hidden = !(answered && !r.on_hold);
        box.querySelector("[data-action=unhold]").hidden = !(answered && r.on_hold);
        box.querySelector(".transfer").hidden = !answered;
        for (const b of box.querySelectorAll("button")) b.disabled = busy;
      },
    };
  }
  const control = root.dataset.control === "on" ? controls() : null;

  function onSnapshot(data) {
    offset = data.now - Date.now() / 1000;
    legs.clear();
    crm.clear();
    since.clear();
    entered.clear();
    for (const [uuid, url] of Object.entries(data.crm || {})) crm.set(uuid, url);
    for (const [uuid, start] of Object.entries(data.since || {})) since.set(uuid, start);
    for (const r of data.calls) {
      legs.set(r.leg_uuid, r);
      entered.set(r.leg_uuid, seconds(r.time));
    }
    day = data.day;
    link(data.link);
    draw();
    drawDay();
  }
  function onLeg(r) {
    const before = legs.get(r.leg_uuid);
    legs.set(r.leg_uuid, r);
    if (!before || before.state !== r.state) entered.set(r.leg_uuid, seconds(r.time));
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
    events.addEventListener("since", function (e) {
      const c = JSON.parse(e.data);
      if (c.since === null) since.delete(c.leg_uuid); else since.set(c.leg_uuid, c.since);
    });
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
