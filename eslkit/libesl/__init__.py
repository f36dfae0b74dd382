"""libesl in pure Python: the C library behind FreeSWITCH's SWIG ``ESL`` module.

`eslkit.ESL` (the ``ESLconnection``/``ESLevent`` API) sits on these modules; each
follows one file of FreeSWITCH 1.10.12's ``libs/esl/src`` so that old programs see
the same values, the same header order and the same quirks:

* `event`  — ``esl_event.c``: an event's headers (case-insensitive, arrays,
  ``name[i]`` indexes), body, serialising (plain and JSON) and copying;
* `cjson`  — what ``cJSON_Print`` writes and what ``cJSON_Parse`` accepts;
* `url`    — ``esl_url_encode``/``esl_url_decode``, including their edges;
* `handle` — ``esl.c``'s connection: connect, send, receive, the reply/event
  queue, timeouts and disconnects, framed by `eslkit.protocol.Parser`;
* `log`    — ``esl_log`` and ``esl_global_set_default_logger``.

Strings here are C strings in Python clothing: never a NUL, and bytes that are
not UTF-8 are carried as surrogate escapes, which is what SWIG hands Python for
a ``char *``.
"""
