"""`authpipe dev`: the sandbox. One process serving Authpipe with the provider emulators mounted
inside it, a kept project `default`, Simulate controls over the emulators and a webhook inbox.

- run: binding the port, the banner, project `default` and its providers and webhook
- providers: which emulator plays which catalog provider, and the overrides pointing at it
- simulate: the Simulate controls (revoke a grant, expire a token, an outage, rate limiting)
- inbox: the webhook receiver and the deliveries it kept
"""

DEFAULT_PROJECT = "default"
# The one-click connect's tenant and user: the same ids the README tour and the SDK examples use.
TENANT_ID, USER_ID = "org_acme", "user_123"
