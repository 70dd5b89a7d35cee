"""Where alerts leave Microfleet: users' channels through Apprise, and the installation's MQTT topic.

Apprise (https://github.com/caronc/apprise) speaks ntfy, e-mail, Telegram, Matrix, Slack, JSON/XML
webhooks and dozens more, each named by a URL (``ntfys://topic``, ``mailtos://user:pass@host``,
``json://host:port/path``...). Every new alert is also published, as JSON, to
``<prefix>/v1/<vehicle_id>/alerts`` on the broker the cars use (QoS 1, not retained), for integrations
that log in as Microfleet's broker user (Home Assistant, Node-RED).
"""

from __future__ import annotations

import json
import ssl
from typing import Any, Final

from microfleet.domain.alerts import Severity
from microfleet.errors import InvalidInputError

# Apprise's message types by severity: the icon and colour a channel shows.
_TYPES: Final = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "failure"}


def _apprise() -> Any:
    """Apprise, imported on first use with its plugins.

    The e-mail plugin's PGP support imports the deprecated ``imghdr``: Apprise's warning, silenced once here.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
        import apprise.utils.pgp
    return apprise


class AppriseNotifier:
    """Sends one message to one Apprise URL; checks and masks URLs for storing and showing."""

    def check(self, url: str) -> str:
        """The URL with its secrets masked; :class:`InvalidInputError` if Apprise knows no such channel."""
        apprise = _apprise()
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            raise InvalidInputError(
                "no notification channel takes this URL; see https://github.com/caronc/apprise/wiki for "
                "the forms (ntfy://, mailto://, tgram://, json://, ...)"
            )
        return str(plugin.url(privacy=True))

    def notify(self, url: str, title: str, body: str, severity: Severity) -> str | None:
        """Send one message; None when the channel took it, else what went wrong (Apprise's own words)."""
        apprise = _apprise()
        sender = apprise.Apprise()
        if not sender.add(url):
            return "no notification channel takes this URL"
        result = sender.notify(body=body, title=title, notify_type=_TYPES[severity])
        if result:
            return None
        words = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        return "; ".join(words)[-1_000:] or "the channel refused the message"


class MqttAlertTopic:
    """Publishes each alert to ``<prefix>/v1/<vehicle_id>/alerts`` with Microfleet's broker login."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        topic_prefix: str,
        username: str | None,
        password: str | None,
        client_id: str,
        tls_context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._prefix = topic_prefix
        self._username = username
        self._password = password
        self._client_id = client_id
        self._tls = tls_context
        self._timeout_s = timeout_s

    def topic(self, vehicle_id: str) -> str:
        """The alert topic of a vehicle."""
        return f"{self._prefix}/v1/{vehicle_id}/alerts"

    def publish_alert(self, vehicle_id: str, alert: dict[str, Any]) -> str | None:
        """Publish one alert at QoS 1 and wait for the broker's PUBACK; None when done, else why not."""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        try:
            client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            return f"cannot reach the MQTT broker at {self._host}:{self._port}: {exc}"
        client.loop_start()
        try:
            payload = json.dumps(alert, sort_keys=True).encode()
            info = client.publish(self.topic(vehicle_id), payload, qos=1)
            info.wait_for_publish(self._timeout_s)
            if not info.is_published():
                return (
                    f"the MQTT broker did not acknowledge the alert within {self._timeout_s:g} s ({info.rc})"
                )
            return None
        except (RuntimeError, ValueError) as exc:  # paho: not connected / refused (bad login, ACL)
            return f"MQTT publish failed: {exc}"
        finally:
            client.disconnect()
            client.loop_stop()
