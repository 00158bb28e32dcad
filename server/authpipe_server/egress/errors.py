"""How an outbound call can fail before its answer is in hand. Messages name the rule or the
limit, never what answered (so an error cannot be used to map a network)."""

from __future__ import annotations

from authpipe_server.egress.policy import EgressRefused


class EgressError(Exception):
    code = "egress_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EgressTimeout(EgressError):
    code = "timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"timeout: no complete answer within {seconds:g} s")


class EgressUnreachable(EgressError):
    code = "unreachable"

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot reach the server ({reason})")


class ResponseTooLarge(EgressError):
    code = "response_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")


__all__ = ["EgressError", "EgressRefused", "EgressTimeout", "EgressUnreachable", "ResponseTooLarge"]
