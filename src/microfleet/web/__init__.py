"""The web app: the pages a person uses, served by the API process at ``/`` (docs/web.md).

The browser reads the same JSON API a user's token reads, with a session cookie instead of a token, so a
page shows exactly what the API would show that user. Nothing here decides who sees what.
"""

from microfleet.web.pages import STATIC_DIR, add_web_app

__all__ = ["STATIC_DIR", "add_web_app"]
