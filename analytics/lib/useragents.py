"""What a tracking request's user agent and address say: device, mail client, and whether a bot.

Bots and prefetchers are flagged rather than dropped, so a report can show both figures:
- Apple Mail Privacy Protection fetches every image through Apple's proxies as soon as the
  message lands, from Apple's 17.0.0.0/8 network with a bare "Mozilla/5.0" user agent;
- security scanners (Barracuda, Mimecast, Proofpoint, Microsoft Defender/Safe Links, ...) and
  generic HTTP clients announce themselves in the user agent.
Timing rules (a click within seconds of delivery, every link within a second) need the ledger
and the delivery's other clicks, so the drain applies them (analytics/services.py).
Gmail's and Yahoo's image proxies fetch when the person opens the message: they count as human.
"""

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

# Networks whose requests are machine prefetches, not people.
PREFETCH_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "17.0.0.0/8",  # Apple (Mail Privacy Protection proxies)
        "2620:149::/32",  # Apple IPv6
        "2a01:b740::/32",  # Apple IPv6
    )
)

SCANNER_PATTERN = re.compile(
    r"bot\b|crawler|spider|barracuda|mimecast|proofpoint|safelinks|microsoft defender|forcepoint|"
    r"symantec|trendmicro|fortiguard|sophos|cisco|ironport|zscaler|urldefense|linkscanner|"
    r"python-requests|python-urllib|curl/|wget/|go-http-client|java/|okhttp|libwww|headless|"
    r"phantomjs|slurp|facebookexternalhit|preview",
    re.IGNORECASE,
)

CLIENTS = (
    ("GoogleImageProxy", "Gmail"),
    ("YahooMailProxy", "Yahoo Mail"),
    ("Thunderbird", "Thunderbird"),
    ("Outlook-iOS", "Outlook"),
    ("Outlook-Android", "Outlook"),
    ("Microsoft Outlook", "Outlook"),
    ("MSOffice", "Outlook"),
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("AppleWebKit", "Apple Mail"),
)


@dataclass(frozen=True)
class Agent:
    device: str  # desktop, mobile, tablet, proxy, bot, unknown
    client: str
    is_bot: bool
    bot_reason: str


@lru_cache(maxsize=4096)
def classify(user_agent: str, ip: str = "") -> Agent:
    ua = user_agent or ""
    if _in_prefetch_network(ip) and (ua.strip() in ("", "Mozilla/5.0") or "AppleWebKit" in ua):
        return Agent("proxy", "Apple Mail (privacy proxy)", True, "apple_mpp")
    if SCANNER_PATTERN.search(ua):
        return Agent("bot", _scanner_name(ua), True, "scanner_user_agent")
    if not ua.strip():
        return Agent("unknown", "Unknown", False, "")
    client = next((name for marker, name in CLIENTS if marker in ua), "Other")
    if client in ("Gmail", "Yahoo Mail"):
        device = "proxy"
    elif "iPad" in ua or "Tablet" in ua:
        device = "tablet"
    elif "Mobile" in ua or "iPhone" in ua or "Android" in ua:
        device = "mobile"
    else:
        device = "desktop"
    return Agent(device, client, False, "")


def _in_prefetch_network(ip: str) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in PREFETCH_NETWORKS if network.version == address.version)


def _scanner_name(ua: str) -> str:
    match = SCANNER_PATTERN.search(ua)
    return f"Scanner ({match.group(0).strip('/').lower()})"[:40] if match else "Scanner"
