"""The one way out: every outbound request (providers, DID documents, PDSes, webhooks) goes
through `Egress` — an address policy, a total deadline and a size cap (docs/security.md)."""

from authpipe_server.egress.client import Egress
from authpipe_server.egress.errors import EgressError, EgressRefused, EgressTimeout, EgressUnreachable, ResponseTooLarge
from authpipe_server.egress.policy import EgressPolicy

__all__ = ["Egress", "EgressError", "EgressPolicy", "EgressRefused", "EgressTimeout", "EgressUnreachable", "ResponseTooLarge"]
