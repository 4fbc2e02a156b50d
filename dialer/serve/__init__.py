"""`dialer serve`: the always-on service — scheduler, HTTP API, webhooks, dashboard."""
