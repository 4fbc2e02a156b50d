"""The dialer product: campaigns, the store, lead intake, the engine, the CLI and the API.

Uses `rules`, `lines` and `voice`; none of them uses it.
"""

__version__ = "0.1.0"
