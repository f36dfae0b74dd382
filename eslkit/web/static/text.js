// What every page of eslkit serve shows of network text: the same rules as the terminal
// (eslkit/safe_text.py). Values are then set with textContent, never parsed as HTML.
"use strict";
const eslkitText = Object.freeze({
  // C0 -> control pictures, DEL -> ␡, other controls and format characters -> <U+XXXX>;
  // at most 256 characters.
  shown: function (value) {
    let text = value === null || value === undefined ? "" : String(value);
    if (text.length > 256) text = text.slice(0, 255) + "…";
    return text.replace(/[\p{Cc}\p{Cf}\p{Cs}\p{Cn}\p{Zl}\p{Zp}]/gu, function (ch) {
      const code = ch.codePointAt(0);
      if (code < 0x20) return String.fromCodePoint(0x2400 + code);
      if (code === 0x7f) return "\u2421";
      return "<U+" + code.toString(16).toUpperCase().padStart(4, "0") + ">";
    });
  },
  // Seconds as m:ss, or h:mm:ss from an hour (eslkit.views.popup.format_seconds); "–" for none.
  clock: function (span) {
    if (span === null || span === undefined || isNaN(span)) return "–";
    const s = Math.max(0, Math.round(span));
    const mm = String(Math.floor(s / 60) % 60).padStart(2, "0"), ss = String(s % 60).padStart(2, "0");
    return s >= 3600 ? Math.floor(s / 3600) + ":" + mm + ":" + ss : Math.floor(s / 60) + ":" + ss;
  },
});
