"""Write docs/openapi.json, the document the gateway serves (``make openapi``).

It is built in-process, from the apps' own documents and the gateway's merge: no
server, store or network is needed. ``tests/test_openapi_contract.py`` checks that the
running gateway serves exactly this.
"""

import sys
from pathlib import Path

from momentum_analytics.main import create_app as analytics_app
from momentum_auth.main import create_app as auth_app
from momentum_gateway.main import create_app as gateway_app
from momentum_gateway.main import own_document
from momentum_gateway.openapi import merge, render
from momentum_tracking.main import create_app as tracking_app

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def main() -> int:
    services = {
        "auth": auth_app().openapi(),
        "tracking": tracking_app().openapi(),
        "analytics": analytics_app().openapi(),
    }
    COMMITTED.write_text(render(merge(own_document(gateway_app()), services)), encoding="utf-8")
    print(f"wrote {COMMITTED.relative_to(Path.cwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
