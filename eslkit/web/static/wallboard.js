// The supervisors' wallboard: the figures of /wallboard.json (the same as
// `eslkit wallboard --format json`), read again every few seconds. Names and numbers come
// from the switch: they are set with textContent after text.js made their controls visible.
"use strict";
(function () {
  const root = document.getElementById("wallboard");
  const every = Number(root.dataset.refresh || 2) * 1000;
  const linkEl = document.getElementById("link");
  const {shown, clock} = eslkitText; // text.js
  const KIND = {callcenter: "callcenter", fifo: "fifo", group: "ring group"};
  const STATE = {available: "Available", ringing: "Ringing", talking: "Talking", on_hold: "On hold",
                 after_call_work: "After call", on_break: "On break", logged_out: "Logged out"};

  function time(epoch) {
    return epoch ? new Date(epoch * 1000).toLocaleTimeString([], {hour12: false}) : "–";
  }
  function percent(ratio) { return ratio === null || ratio === undefined ? "–" : Math.round(ratio * 100) + "%"; }
  // One table row: each cell [text, class]; the text goes in a <bdi> (isolated from its neighbours).
  function row(cells, data) {
    const tr = document.createElement("tr");
    for (const [text, style] of cells) {
      const td = document.createElement("td");
      const bdi = document.createElement("bdi");
      bdi.textContent = text;
      td.append(bdi);
      if (style) td.className = style;
      tr.append(td);
    }
    for (const [key, value] of Object.entries(data || {})) tr.dataset[key] = value;
    return tr;
  }
  function fill(id, rows) {
    document.querySelector("#" + id + " tbody").replaceChildren(...rows);
    document.getElementById(id + "-empty").hidden = rows.length > 0;
  }
  function link(state) {
    linkEl.dataset.connected = state.connected ? "true" : "false";
    linkEl.textContent = (state.connected ? "● " : "○ ") + shown(state.text);
  }

  function draw(data) {
    document.getElementById("clock").textContent = time(data.time);
    document.getElementById("since").textContent = time(data.since);
    link(data.link);
    fill("queues", data.queues.map(function (q) {
      const long = q.longest_wait !== null && q.longest_wait > data.warn_wait;
      const low = q.service_level !== null && q.service_level < data.target;
      return row([
        [shown(q.name), "name"], [KIND[q.kind] || shown(q.kind), "kind"],
        [String(q.waiting), long ? "alert" : (q.waiting ? "ringing" : "")],
        [q.waiting ? clock(q.longest_wait) : "–", long ? "alert" : ""],
        [String(q.offered), ""], [String(q.answered), "answered"],
        [String(q.abandoned), q.abandoned ? "missed" : ""], [String(q.missed), q.missed ? "missed" : ""],
        [percent(q.service_level) + " <" + q.service_level_seconds + "s",
         low ? "alert" : (q.service_level !== null ? "good" : "")],
        [clock(q.wait_avg), ""], [clock(q.wait_p90), ""], [clock(q.talk_avg), ""], [clock(q.talk_p90), ""],
      ], {queue: q.name, kind: q.kind});
    }));
    fill("agents", data.agents.map(function (a) {
      const name = shown(a.name) + (a.ext && a.ext !== a.name ? " " + shown(a.ext) : "");
      return row([
        [name, "name"], [STATE[a.state] || shown(a.state), "state " + a.state],
        [a.current_call === null ? "" : clock(a.current_call), ""],
        [String(a.answered), "answered"], [String(a.missed), a.missed ? "missed" : ""],
        [clock(a.talk_seconds), ""], [String(a.outgoing), ""], [shown(a.queues.join(", ")), "name"],
      ], {agent: a.name, state: a.state});
    }));
    const c = data.calls;
    document.getElementById("calls").textContent = "All calls: " + c.waiting + " waiting · " + c.answered +
      " answered · " + c.missed + " missed · " + c.busy + " busy · mean ring " + clock(c.mean_ring);
    document.getElementById("notes").replaceChildren(...data.notes.map(function (note) {
      const li = document.createElement("li");
      li.textContent = shown(note);
      return li;
    }));
  }

  async function read() {
    try {
      const response = await fetch("/wallboard.json" + location.search, {cache: "no-store"});
      if (response.status === 401) { location.reload(); return; } // logged out: the login form
      if (!response.ok) throw new Error(response.status);
      draw(await response.json());
      root.dataset.read = String(Date.now());
    } catch (e) {
      link({connected: false, text: "reconnecting to eslkit serve…"});
    }
  }
  read();
  setInterval(read, every);
})();
