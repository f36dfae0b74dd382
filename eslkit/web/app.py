"""The HTTP side of ``eslkit serve``: pages, the JSON API and the event streams (aiohttp).

    site = WebApp(board, users, signer=Signer(session_key()))
    runner = await site.start("127.0.0.1", 8080)      # in the loop the source and engine run in
    ...
    await site.stop(runner)

Routes (every one needs a login; docs/serve.md has the full reference):

    GET  /login, POST /login, POST /logout         the login page (name + password, or a token)
    GET  /                                         a supervisor's list of agents; an agent's own page
    GET  /agent/{ext}                              the agent's page: cards, the day's calls
    GET  /api/agent/{ext}/calls                    the calls up now (records, as popup --format json)
    GET  /api/agent/{ext}/day                      the day's ended calls, newest first
    GET  /api/agent/{ext}/events                   Server-Sent Events (eslkit.web.board)
    GET  /api/me                                   who is logged in, and which extensions they see
    POST /api/agent/{ext}/calls/{action}           with --control: hangup, hold, unhold, transfer, dial

Who may see what is decided once, by `eslkit.web.users.allowed` (who may act: `may_act`;
whose call it is: `eslkit.control`); `WebApp.page()` mounts
another page behind the same login (``supervisor=True``: supervisors only), before the
server starts (``ServeRun.web`` is the app of ``eslkit serve``), e.g.::

    async def wallboard_handler(request, user) -> web.Response: ...
    site.page("/wallboard", wallboard_handler, supervisor=True)
    site.api("/metrics", metrics_handler, supervisor=True)     # 401/403 as JSON
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import secrets
from typing import Awaitable, Callable, Optional

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from eslkit.control import Action, Actor, ControlError, Request, Result
from eslkit.errors import EslkitError
from eslkit.safe_text import visible
from eslkit.web.board import CallBoard, encode
from eslkit.web.security import LoginBrake, Session, Signer, same
from eslkit.web.users import User, Users, allowed, may_act

__all__ = ["WebApp", "SESSION_COOKIE"]

SESSION_COOKIE = "eslkit_session"
LOGIN_COOKIE = "eslkit_login"  # the login form's CSRF token (double-submit)
TICK_EVERY = 0.5  # the board sends each stream its clock in turn (eslkit.web.board.CLOCK_EVERY)
_STATIC = "static"
Handler = Callable[[web.Request, User], Awaitable[web.StreamResponse]]
# The buttons' actions (answer is left out: most phones ignore uuid_phone_event talk).
CONTROL_ACTIONS = (Action.hangup, Action.hold, Action.unhold, Action.transfer, Action.dial)
# A refusal's HTTP status, by ControlError.kind.
CONTROL_STATUS = {"not_allowed": 403, "no_call": 409, "bad_number": 422, "refused_by_switch": 502,
                  "timeout": 504, "no_reply": 504, "rate_limited": 429}
MAX_CONTROL_BODY = 4096

# No script or style from anywhere else, no inline script, no framing (the buttons must not
# be clickable through another site's page), no referrer leaving for another site.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make Chrome send "Origin: null" on our own forms
    "Cache-Control": "no-store",
}


class WebApp:
    """The aiohttp application of one ``eslkit serve``."""

    def __init__(self, board: CallBoard, users: Users, *, signer: Signer, brake: Optional[LoginBrake] = None,
                 title: str = "eslkit", control: Optional[Actor] = None):
        self.board = board
        self.users = users
        self.signer = signer
        self.brake = brake or LoginBrake()
        self.title = title
        self.control = control
        self.templates = Environment(loader=PackageLoader("eslkit.web", "templates"),
                                     autoescape=select_autoescape(default=True), trim_blocks=True,
                                     lstrip_blocks=True)
        self.app = web.Application(middlewares=[self._headers])
        self.app.router.add_get("/login", self._login_page)
        self.app.router.add_post("/login", self._login)
        self.app.router.add_post("/logout", self._logout)
        self.app.router.add_static("/static", _static_dir(), name="static", append_version=True)
        self.page("/", self._index)
        self.page("/agent/{ext}", self._agent_page)
        self.api("/api/me", self._me)
        self.api("/api/agent/{ext}/calls", self._calls)
        self.api("/api/agent/{ext}/day", self._day)
        self.api("/api/agent/{ext}/events", self._events)
        self.api("/api/agent/{ext}/calls/{action}", self._control, method="POST")
        self.app.on_shutdown.append(self._closing)

    # --- mounting ----------------------------------------------------------------------------

    def page(self, path: str, handler: Handler, *, supervisor: bool = False) -> None:
        """A page behind the login: no login → 401 with the login form; not allowed → 403."""
        self.app.router.add_get(path, self._guard(handler, supervisor, api=False))

    def api(self, path: str, handler: Handler, *, supervisor: bool = False, method: str = "GET") -> None:
        """A JSON (or stream) route: no login → 401 JSON; a POST must carry the CSRF token
        when it comes with a session cookie (a Bearer token is not sent by browsers on their own)."""
        self.app.router.add_route(method, path, self._guard(handler, supervisor, api=True))

    def _guard(self, handler: Handler, supervisor: bool, api: bool) -> Callable:
        async def guarded(request: web.Request) -> web.StreamResponse:
            user, session = self.who(request)
            if user is None:
                return self._unauthorised(request, api)
            if supervisor and not user.supervisor:
                return self._refused(request, api, "This page is for supervisors.")
            if request.method not in ("GET", "HEAD") and session is not None:
                if not self._same_origin(request) or not self.signer.csrf_ok(
                        session.sid, request.headers.get("X-CSRF-Token")):
                    return self._refused(request, api, "The request lacks this page's CSRF token: reload the page.")
            return await handler(request, user)
        return guarded

    # --- who is asking ---------------------------------------------------------------------

    def who(self, request: web.Request) -> tuple[Optional[User], Optional[Session]]:
        """The user of a request: an API token (``Authorization: Bearer``) or a session cookie."""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return self.users.with_token(auth[7:].strip()), None
        session = self.signer.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None, None
        user = self.users.get(session.name)
        return (user, session) if user is not None else (None, None)

    def _not_seen(self, user: User, ext: str) -> Optional[tuple[int, str]]:
        """None when ``user`` may see ``ext``; else the HTTP status and why not."""
        if allowed(user, ext, self.board.exts):
            return None
        shown = visible(ext, 40)
        if user.supervisor:
            return 404, f"No agent has extension {shown} in the users file."
        return 403, f"{user.name} may not see the calls of {shown}."

    def _ext(self, request: web.Request, user: User, api: bool) -> tuple[str, Optional[web.Response]]:
        ext = request.match_info["ext"]
        why = self._not_seen(user, ext)
        return ext, None if why is None else self._error(request, api, *why)

    # --- pages ---------------------------------------------------------------------------------

    def render(self, request: web.Request, template: str, status: int = 200, **values) -> web.Response:
        _, session = self.who(request)
        values.setdefault("csrf", self.signer.csrf(session.sid) if session is not None else "")
        values.setdefault("static", lambda name: str(self.app.router["static"].url_for(filename=name)))
        html = self.templates.get_template(template).render(title=self.title, **values)
        return web.Response(text=html, status=status, content_type="text/html")

    async def _login_page(self, request: web.Request, status: int = 200, message: str = "") -> web.Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        nxt = request.query.get("next", "") if request.method == "GET" else ""
        response = self.render(request, "login.html", status=status, message=message, login_csrf=token,
                               next=_local_path(nxt) or "")
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                            secure=_secure(request))
        return response

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._same_origin(request) or not form.get("csrf") or \
                not same(str(form.get("csrf")), request.cookies.get(LOGIN_COOKIE)):
            return await self._login_page(request, 403, "The login form had expired: try again.")
        name = str(form.get("name", ""))[:64]
        client = _client(request)
        keys = [f"ip:{client}"] + ([f"name:{name}"] if name else [])
        wait = self.brake.wait(*keys)
        if wait > 0:
            response = await self._login_page(request, 429, f"Too many failed logins: try again in "
                                                             f"{int(wait) + 1} seconds.")
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        token = str(form.get("token", ""))
        if token:
            user = self.users.with_token(token)
        else:
            # scrypt takes ~50 ms: in a thread, so that the streams keep flowing meanwhile.
            user = await asyncio.get_running_loop().run_in_executor(
                None, self.users.login, name, str(form.get("password", ""))[:1024])
        if user is None:
            self.brake.failed(*keys)
            return await self._login_page(request, 401, "Wrong name or password.")
        self.brake.succeeded(*keys[1:])
        _, cookie = self.signer.new_session(user.name)
        response = web.HTTPSeeOther(_local_path(str(form.get("next", ""))) or user.home())
        response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Strict", path="/",
                            secure=_secure(request), max_age=int(self.signer.lifetime))
        response.del_cookie(LOGIN_COOKIE, path="/login")
        raise response

    async def _logout(self, request: web.Request) -> web.Response:
        user, session = self.who(request)
        if session is not None and not (self._same_origin(request) and self.signer.csrf_ok(
                session.sid, (await request.post()).get("csrf"))):
            return self._refused(request, False, "The request lacks this page's CSRF token: reload the page.")
        if session is not None:
            self.signer.end(session)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    async def _index(self, request: web.Request, user: User) -> web.StreamResponse:
        if not user.supervisor and len(user.exts) == 1:
            raise web.HTTPSeeOther(user.home())
        exts = [ext for ext in self.board.exts if allowed(user, ext, self.board.exts)]
        return self.render(request, "index.html", user=user, exts=exts)

    async def _agent_page(self, request: web.Request, user: User) -> web.StreamResponse:
        ext, refused = self._ext(request, user, api=False)
        if refused is not None:
            return refused
        control = self.control is not None and may_act(user, ext, self.board.exts)
        return self.render(request, "agent.html", user=user, ext=ext, control=control)

    # --- the API ------------------------------------------------------------------------------

    async def _me(self, request: web.Request, user: User) -> web.Response:
        exts = [ext for ext in self.board.exts if allowed(user, ext, self.board.exts)]
        return _json({"name": user.name, "role": user.role, "exts": exts})

    async def _calls(self, request: web.Request, user: User) -> web.Response:
        ext, refused = self._ext(request, user, api=True)
        if refused is not None:
            return refused
        snapshot = self.board.snapshot([ext])
        return _json({"ext": ext, "now": snapshot["now"], "link": snapshot["link"], "calls": snapshot["calls"],
                      "crm": snapshot["crm"], "since": snapshot["since"]})

    async def _day(self, request: web.Request, user: User) -> web.Response:
        ext, refused = self._ext(request, user, api=True)
        if refused is not None:
            return refused
        return _json({"ext": ext, "day": self.board.snapshot([ext])["day"]})

    async def _events(self, request: web.Request, user: User) -> web.StreamResponse:
        ext, refused = self._ext(request, user, api=True)
        if refused is not None:
            return refused
        response = web.StreamResponse(headers={
            **_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        number = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            async with self.board.subscribe([ext]) as stream:
                # The browser reconnects by itself 1 s after a drop, and gets a fresh snapshot.
                await response.write(b"retry: 1000\n\n")
                async for name, data in stream:
                    number += 1
                    await response.write(f"event: {name}\nid: {number}\ndata: {data}\n\n".encode("ascii"))
        return response

    async def _control(self, request: web.Request, user: User) -> web.Response:
        """One button: the request goes to the controller, which checks that the call is
        ``ext``'s, the destination allowed and ``ext`` within its rate limit (429).  Every answer is a result object (as
        ``eslkit phone --format json`` writes); what serve refuses itself is audited too."""
        ext, action = request.match_info["ext"], request.match_info["action"]
        if self.control is None:
            _, refused = self._ext(request, user, api=True)
            return refused or self._refused(request, True, "This eslkit serve runs without --control: its pages "
                                                           "show calls and do not act on them.")
        why = self._may_not_act(user, ext, action)
        body = {}
        if why is None:
            body = await _control_body(request)
            if isinstance(body, str):
                why = (400, "bad_request", body)
        if why is not None:
            status, kind, text = why
            result = Result(False, ext[:64], action[:64], text, error=kind)
            audit = getattr(self.control, "audit", None)  # a Controller's; through a broker, the relay's
            if audit is not None:
                audit.entry(ext=result.ext, action=result.action, result=kind, text=text, via="web",
                            client_id=user.name)
            return _json(result.to_dict(), status)
        wanted = Request(ext, Action(action), target=body.get("target"), uuid=body.get("uuid"), via="web",
                           client_id=user.name)
        # Shielded: a button pressed is carried out and audited even if the page goes away meanwhile.
        task = asyncio.ensure_future(self.control.act(wanted))
        try:
            result = await asyncio.shield(task)
        except ControlError as err:
            result = err.result or Result(False, ext, action, str(err), error=err.kind)
            response = _json(result.to_dict(), CONTROL_STATUS.get(err.kind, 409))
            if getattr(err, "retry_after", None) is not None:  # rate_limited: when the next one is taken
                response.headers["Retry-After"] = str(math.ceil(err.retry_after))
            return response
        except EslkitError as err:  # the link to the switch or broker is down
            return _json(Result(False, ext, action, f"{ext}: {action} failed: {err}", error="unavailable").to_dict(),
                         503)
        return _json(result.to_dict())

    def _may_not_act(self, user: User, ext: str, action: str) -> Optional[tuple[int, str, str]]:
        """None when ``user``'s button may ask for ``action`` on ``ext``'s calls; else the
        HTTP status, the refusal's kind and its sentence."""
        unseen = self._not_seen(user, ext)
        if unseen is not None:
            return unseen[0], "not_allowed", unseen[1]
        if action not in {a.value for a in CONTROL_ACTIONS}:
            return 404, "bad_request", (f"{visible(action, 40)} is not an action here: use "
                                        f"{', '.join(a.value for a in CONTROL_ACTIONS)}.")
        if not may_act(user, ext, self.board.exts):
            shown = visible(ext, 40)
            return 403, "not_allowed", f"{user.name} may see the calls of {shown} but not act on them: only " \
                                       f"{shown}'s own login may."
        return None

    # --- answers -------------------------------------------------------------------------------

    def _unauthorised(self, request: web.Request, api: bool) -> web.StreamResponse:
        if api:
            response = _json({"error": "Log in first: a session cookie or Authorization: Bearer TOKEN."}, 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="eslkit"'
            return response
        token = secrets.token_urlsafe(16)
        response = self.render(request, "login.html", status=401, message="", login_csrf=token,
                               next=request.path_qs)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login",
                            secure=_secure(request))
        return response

    def _refused(self, request: web.Request, api: bool, message: str) -> web.Response:
        return self._error(request, api, 403, message)

    def _error(self, request: web.Request, api: bool, status: int, message: str) -> web.Response:
        if api:
            return _json({"error": message}, status)
        return self.render(request, "error.html", status=status, message=message)

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        """A POST whose Origin names another site is refused (browsers always send it on POST)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        return origin.split("://", 1)[-1] == request.host

    @web.middleware
    async def _headers(self, request: web.Request, handler) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:  # a stream set its own before it began
            for name, value in _HEADERS.items():
                if name == "Cache-Control" and request.path.startswith("/static/"):
                    continue
                response.headers.setdefault(name, value)
        return response

    # --- running -------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> web.AppRunner:
        """Listen on ``host:port`` in the running loop; the runner's ``addresses`` say where."""
        runner = web.AppRunner(self.app, handle_signals=False, access_log=None, handler_cancellation=True,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._ticker = asyncio.ensure_future(self._tick())
        return runner

    async def stop(self, runner: web.AppRunner) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()
        self.board.close()
        await runner.cleanup()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_EVERY)
            self.board.tick()

    async def _closing(self, app: web.Application) -> None:
        self.board.close()


def _json(data, status: int = 200) -> web.Response:
    return web.Response(text=encode(data), status=status, content_type="application/json")


async def _control_body(request: web.Request):
    """The control request's JSON object ({"uuid": …, "target": …}, both optional), or why
    it cannot be read."""
    raw = await request.content.read(MAX_CONTROL_BODY + 1)
    if len(raw) > MAX_CONTROL_BODY:
        return f"A control request is at most {MAX_CONTROL_BODY} bytes."
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return 'A control request is a JSON object, e.g. {"uuid": "…", "target": "1002"}.'
    if not isinstance(body, dict):
        return 'A control request is a JSON object, e.g. {"uuid": "…", "target": "1002"}.'
    for key in ("uuid", "target"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{key} is a string in a control request."
    return body


def _static_dir():
    from pathlib import Path

    return Path(__file__).parent / _STATIC


def _local_path(path: str) -> Optional[str]:
    """A path on this site to go back to after the login, never another site's address."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path and len(path) < 512:
        return path
    return None


def _secure(request: web.Request) -> bool:
    # Behind a TLS reverse proxy the request reaches us over HTTP; the proxy says so.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _client(request: web.Request) -> str:
    """The client's address, for the login brake: behind a proxy on this machine, the
    address the proxy saw (the last one it appended to X-Forwarded-For)."""
    remote = request.remote or ""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(remote).is_loopback:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                return forwarded.split(",")[-1].strip()[:64]
    return remote
