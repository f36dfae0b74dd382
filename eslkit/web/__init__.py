"""The web side of ``eslkit serve`` (imported only when it runs: aiohttp is not free to import).

- `eslkit.web.users` — the users file, password and token hashes, `allowed()`;
- `eslkit.web.security` — signed session cookies, CSRF tokens, the failed-login brake;
- `eslkit.web.board` — the cards and day lists per extension, fanned out to the streams;
- `eslkit.web.app` — the aiohttp application: pages (Jinja2), JSON API, Server-Sent Events.

Templates and static files live beside them and ship in the wheel; there is no build step.
"""
