"""Provider emulators: Spotify, Facebook (with Instagram via Facebook Login), Buffer and Bluesky
as real HTTP (ASGI) apps, for the sandbox (`authpipe dev`) and the tests. See README.md.

Each provider module has `create_app(...)`; `serve_in_thread` runs any ASGI app on a free
loopback port.
"""

from .oauth import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from .serving import serve_in_thread

__all__ = ["SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET", "serve_in_thread"]
