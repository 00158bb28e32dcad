"""Connecting an account: connect sessions, the hosted page, authorization and callback
(RFC 6749 code flow with RFC 7636 PKCE and RFC 9207 issuer checks), and app passwords."""
