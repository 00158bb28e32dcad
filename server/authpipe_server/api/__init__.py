"""HTTP routes, thin: parse, authorize, call one service, answer."""
