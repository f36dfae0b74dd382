"""Run engines: each wires one `eslkit.sources.Source` to views or a broker and owns the
run-time pieces they share (`eslkit.app.runtime`: Ctrl-C, the switch's clock, resync).

- `eslkit.app.watch` — events to a table, JSON lines or fs_cli blocks (``eslkit watch``);
- `eslkit.app.popup` — events through the call tracker to agent popups (``eslkit popup``);
- `eslkit.app.relay` — events and popup states to MQTT or AMQP (``eslkit relay``);
- `eslkit.app.serve` — the popup engine's changes to agent pages in the browser (``eslkit serve``);
- `eslkit.app.demo` — the popup on a simulated switch (``eslkit demo``);
- `eslkit.app.wallboard` — events through the statistics engine to a supervisor's screen
  or JSON snapshots (``eslkit wallboard``).

The commands in `eslkit.commands` only turn options into one call here.
"""
