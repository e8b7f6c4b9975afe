"""The payload of the deploy service's ``build_succeeded`` / ``build_failed`` events, which
the notify service turns into build notices: one shape for the publisher
(``services/deploy/schemas.py`` builds it) and the consumer (``services/notify/schemas.py``)."""
from __future__ import annotations

from typing import TypedDict


class BuildFinished(TypedDict):
    app: str
    service: str
    ref: str
    image: str | None       # None when the build failed before an image existed
    build_number: int | str
    status: str             # the CI's own word: success, failure, error, ...
    link: str | None        # the build's page on the CI server
    reason: str             # one sentence for people
