"""Authpipe's Python SDK: credentials for your users' third-party accounts, cached in memory.

```python
from authpipe import Authpipe, AsyncAuthpipe          # env AUTHPIPE_SECRET_KEY, AUTHPIPE_URL
ap = Authpipe(secret_key="ap_sk_…", base_url="http://127.0.0.1:8080")
cred = ap.get_credential(provider="spotify", tenant_id="org_acme", user_id="user_123")
cred.credential, cred.expires_at, cred.connection_id
```
"""

from authpipe._client import AsyncAuthpipe, Authpipe
from authpipe._errors import (
    AuthpipeError,
    ConnectionNotFound,
    ConnectionRevoked,
    ServerUnreachable,
)
from authpipe._models import (
    Account,
    Connection,
    ConnectionPage,
    ConnectSession,
    Credential,
    Event,
    EventPage,
    LastError,
    Provider,
    ProviderScope,
    Resource,
    Webhook,
)
from authpipe._version import __version__

__all__ = [
    "Account",
    "AsyncAuthpipe",
    "Authpipe",
    "AuthpipeError",
    "ConnectSession",
    "Connection",
    "ConnectionNotFound",
    "ConnectionPage",
    "ConnectionRevoked",
    "Credential",
    "Event",
    "EventPage",
    "LastError",
    "Provider",
    "ProviderScope",
    "Resource",
    "ServerUnreachable",
    "Webhook",
    "__version__",
]
