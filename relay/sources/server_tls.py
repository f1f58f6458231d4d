"""The inbound listener's TLS: the context made from [smtp] tls_cert and tls_key."""

from __future__ import annotations

import ssl

from relay.config import Config
from relay.errors import ConfigError


def server_tls_context(config: Config) -> ssl.SSLContext | None:
    """None without a certificate; a broken one is a one-line configuration error."""
    settings, folder = config.smtp, config.source.parent
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(folder / settings.tls_cert, folder / settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"{config.source}: [smtp] tls_cert/tls_key cannot be loaded: {error}"
        ) from None
    return context
