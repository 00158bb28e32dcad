"""The operators' dashboard under `/dashboard`: server-rendered pages over the same services the
HTTP API uses.

- accounts: operator accounts (argon2id passwords, project limits), made with `authpipe admins`
- sessions: signed-in browsers (hashed cookie tokens, idle and absolute expiry, revocation)
- auth: the signed-in operator of a request, CSRF checks, which projects they may see
- audit: the audit log (sign-ins and every change made through the dashboard); sign-in throttling
- render: the pages' layout (header, project switcher, navigation)
- routes: the one router, `/dashboard/…`, and the error pages
- pages: the pages themselves
"""
