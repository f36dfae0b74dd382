"""The desktop's side of phone control through a broker, chosen by the URL:
``eslkit phone --via URL`` and ``popup --from URL --control``."""

from __future__ import annotations

from eslkit.control import Request, Result

__all__ = ["open_control", "act_via_broker"]


def open_control(url: str, exts, *, wait: float = 10.0):
    """The desktop's side of ``--via URL`` / ``popup --from URL --control``: an
    `MqttControl` or `AmqpControl` (``await control.open()`` next, then ``act``)."""
    import os
    from urllib.parse import urlsplit

    from eslkit.errors import BrokerError
    from eslkit.brokers.urls import PASSWORD_ENV, split_query

    bare, query = split_query(url)
    env = query.get("password_env") or (PASSWORD_ENV if PASSWORD_ENV in os.environ else None)
    scheme = urlsplit(bare).scheme
    if scheme in ("mqtt", "mqtts"):
        from eslkit.control.mqtt import MqttControl
        from eslkit.brokers.mqtt import parse_mqtt_url

        return MqttControl(parse_mqtt_url(bare, password_env=env, client_id=query.get("client_id")), exts, wait=wait)
    if scheme in ("amqp", "amqps"):
        from eslkit.control.amqp import AmqpControl
        from eslkit.brokers.amqp import parse_amqp_url

        return AmqpControl(parse_amqp_url(bare, password_env=env), exts, wait=wait)
    raise BrokerError("Phone control through a broker needs an mqtt://, mqtts://, amqp:// or amqps:// URL.",
                      "Use --via mqtt://HOST:PORT[/freeswitch/HOSTNAME] or amqp://USER@HOST:PORT/VHOST.")


async def act_via_broker(url: str, request: Request, *, wait: float = 10.0) -> Result:
    """``eslkit phone --via URL``: one request through the relay; its reply."""
    control = open_control(url, [request.ext], wait=wait + 2.0)  # the relay's own proof takes up to 5 s
    await control.open()
    try:
        return await control.act(request)
    finally:
        await control.close()
