"""The service's own settings (`dialer serve --config serve.yaml`): what a campaign file
does not say. Campaigns keep their own YAML; this file is the deployment's.

    webhooks:
      endpoints:
        - name: shop
          url: https://shop.example/hooks/dialer
          secret_env: SHOP_WEBHOOK_SECRET   # the HMAC key comes from the environment
          events: [attempt.ended, lead.opted_out, campaign.finished]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dialer.config.fields import STRICT_KEYS
from dialer.config.loader import load_yaml
from dialer.serve.webhooks import WebhookSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeSettings:
    __pydantic_config__ = STRICT_KEYS

    webhooks: WebhookSettings = field(default_factory=WebhookSettings)


def load_serve_settings(path: str | os.PathLike[str]) -> ServeSettings:
    """Load and validate a service settings file (`ConfigError` with file:line if invalid)."""
    return load_yaml(path, ServeSettings)
