"""Where the gateway may send provider keys: the scheme and host policy for configured upstream URLs.

Upstream URLs come only from the config (clients pick an endpoint name, never a URL). Checked at
config load, so a bad URL refuses the config with the key path:

- `https://` anywhere, except link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata);
- `http://` to loopback (127.0.0.0/8, ::1, localhost): the key never leaves the machine;
- `http://` to a private-network host (RFC 1918, CGNAT 100.64/10 and unique-local addresses, single-label names,
  `.internal`, `.local`, `.lan`, `.home.arpa`) only with `gateway.allow_insecure_http: true`;
- anything else (`http://` to a public host, `file://`, `ftp://`, credentials in the URL): refused.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import ConfigError

PRIVATE_SUFFIXES = (".internal", ".local", ".lan", ".home.arpa", ".localdomain")
# Explicit, because ipaddress's is_private also counts documentation and reserved ranges.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
# Provider config keys holding an upstream URL (every provider names its base this way).
URL_KEY_SUFFIXES = ("_api_base", "_base_url", "_endpoint", "_url")


def _host_kind(host: str) -> str:
    """'loopback', 'private', 'link-local' or 'public'."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host or host.endswith(PRIVATE_SUFFIXES):
            return "private"
        return "public"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if any(ip in net for net in PRIVATE_NETWORKS):
        return "private"
    return "public"


def check_upstream_url(url: str, path: str, *, allow_insecure_http: bool) -> None:
    """Raise ConfigError (starting with `path`) when `url` may not carry a provider key."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConfigError(f"{path}: scheme {scheme or '(none)'!r} is not allowed (use https://)")
    if not host:
        raise ConfigError(f"{path}: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{path}: credentials in the URL are not allowed (use the provider's key setting)")
    kind = _host_kind(host)
    if kind == "link-local":
        raise ConfigError(f"{path}: {host} is a link-local address (cloud metadata lives there); refused")
    if scheme == "https" or kind == "loopback":
        return
    if kind == "private" and allow_insecure_http:
        return
    if kind == "private":
        raise ConfigError(
            f"{path}: http:// to {host} sends the provider key unencrypted; use https://, "
            "or set gateway.allow_insecure_http: true for a trusted private network"
        )
    raise ConfigError(f"{path}: http:// to the public host {host} is refused; use https://")


def check_upstream_urls(config: Any) -> None:
    """Check every URL-valued provider setting of every endpoint (called from config loading)."""
    allow = bool(getattr(config.gateway, "allow_insecure_http", False))
    for i, ep in enumerate(config.endpoints):
        resolved = config.provider_configs.get(ep.name)
        values = resolved.model_dump() if resolved is not None else ep.model.config
        for key, value in values.items():
            if not isinstance(value, str) or not key.endswith(URL_KEY_SUFFIXES) or value.startswith("$"):
                continue
            check_upstream_url(value, f"endpoints[{i}].model.config.{key}", allow_insecure_http=allow)
