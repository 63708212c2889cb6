"""A minimal SIP user agent for tests, with digest auth (RFC 3261 / 2617, MD5, ``qop=auth``
when offered), over UDP on loopback: REGISTER many phones at once, and SUBSCRIBE to a hint
collecting the NOTIFYs.

sipp takes one ``-au``/``-ap`` pair per process, so registering 40 phones would be 40
processes; this sends the 40 REGISTERs from one socket each and returns the final status of
every one (200 registered, 401 refused: a wrong password is challenged again). sipp cannot
answer NOTIFYs that arrive at any time while a test goes on; ``Watcher`` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass

_CHALLENGE = re.compile(r'(\w+)="?([^",]*)"?')
ANSWER_TIMEOUT = 5.0
_STATUS = re.compile(r"^SIP/2\.0 (\d{3})")


@dataclass(frozen=True)
class Phone:
    user: str
    password: str


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # SIP digest auth is MD5


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def digest_authorization(challenge_header: str, method: str, uri: str, phone: Phone) -> str:
    """The ``Authorization`` value answering a ``WWW-Authenticate`` challenge."""
    challenge = dict(_CHALLENGE.findall(challenge_header))
    ha1 = _md5(f"{phone.user}:{challenge['realm']}:{phone.password}")
    ha2 = _md5(f"{method}:{uri}")
    fields = {"username": phone.user, "realm": challenge["realm"],
              "nonce": challenge["nonce"], "uri": uri, "algorithm": "MD5"}
    if "auth" in challenge.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        digest = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        fields |= {"qop": "auth", "nc": nc, "cnonce": cnonce}
    else:
        digest = _md5(f"{ha1}:{challenge['nonce']}:{ha2}")
    if "opaque" in challenge:
        fields["opaque"] = challenge["opaque"]
    fields["response"] = digest
    unquoted = {"algorithm", "qop", "nc"}
    return "Digest " + ", ".join(
        f"{key}={value}" if key in unquoted else f'{key}="{value}"'
        for key, value in fields.items())


class Watcher(asyncio.DatagramProtocol):
    """One phone's socket: responses queued for the request waiting on them; every NOTIFY
    (of a subscription) answered 200 and its body kept, in arrival order."""

    def __init__(self) -> None:
        self.responses: asyncio.Queue[str] = asyncio.Queue()
        self.notifies: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        if text.startswith("SIP/2.0"):
            self.responses.put_nowait(text)
        elif text.startswith("NOTIFY") and self.transport is not None:
            self.notifies.append(text.partition("\r\n\r\n")[2])
            copied = [f"{name}: {_header(text, name)}"
                      for name in ("Via", "From", "To", "Call-ID", "CSeq")]
            self.transport.sendto(
                "\r\n".join(["SIP/2.0 200 OK", *copied, "Content-Length: 0", "", ""]).encode(),
                addr)

    def states(self) -> list[str]:
        """The dialog-info state each NOTIFY carried (confirmed: in use, terminated: idle)."""
        return [found.group(1) for body in self.notifies
                if (found := re.search(r"<state>(\w+)</state>", body))]

    async def final_response(self) -> str:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            while True:
                response = await self.responses.get()
                status = _STATUS.match(response)
                if status and int(status.group(1)) >= 200:
                    return response


async def _request(
    phone: Phone, method: str, uri: str, to: str, server: tuple[str, int], local_ip: str,
    headers: list[str],
) -> tuple[int, Watcher]:
    """Send one request from a new socket, answering one digest challenge; the final status
    and the socket's watcher (its transport still open)."""
    loop = asyncio.get_running_loop()
    transport, watcher = await loop.create_datagram_endpoint(Watcher, local_addr=(local_ip, 0))
    port = transport.get_extra_info("sockname")[1]
    host = f"{server[0]}:{server[1]}"
    call_id, tag = secrets.token_hex(8), secrets.token_hex(4)

    def message(cseq: int, authorization: str = "") -> bytes:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local_ip}:{port};rport;branch=z9hG4bK{secrets.token_hex(6)}",
            "Max-Forwards: 70", f"From: <sip:{phone.user}@{host}>;tag={tag}", f"To: <{to}>",
            f"Call-ID: {call_id}", f"CSeq: {cseq} {method}",
            f"Contact: <sip:{phone.user}@{local_ip}:{port}>", *headers,
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()

    try:
        transport.sendto(message(1), server)
        response = await watcher.final_response()
        if int(response[8:11]) == 401:
            transport.sendto(message(2, digest_authorization(
                _header(response, "WWW-Authenticate"), method, uri, phone)), server)
            response = await watcher.final_response()
    except BaseException:
        transport.close()
        raise
    return int(response[8:11]), watcher


async def register(
    phone: Phone, server: tuple[str, int], local_ip: str, *, expires: int = 120,
) -> int:
    """REGISTER ``phone`` at ``server``; the final status after answering one challenge
    (each answer awaited at most ``ANSWER_TIMEOUT`` seconds)."""
    host = f"{server[0]}:{server[1]}"
    status, watcher = await _request(phone, "REGISTER", f"sip:{host}",
                                     f"sip:{phone.user}@{host}", server, local_ip,
                                     [f"Expires: {expires}"])
    if watcher.transport is not None:
        watcher.transport.close()
    return status


async def register_all(
    phones: list[Phone], server: tuple[str, int], local_ip: str
) -> dict[str, int]:
    """Register every phone concurrently; the final status by user."""
    statuses = await asyncio.gather(*(register(p, server, local_ip) for p in phones))
    return {phone.user: status for phone, status in zip(phones, statuses, strict=True)}


async def subscribe(
    phone: Phone, extension: str, server: tuple[str, int], local_ip: str, *,
    expires: int = 120,
) -> tuple[int, Watcher]:
    """SUBSCRIBE ``phone`` to ``extension``'s hint; the final status and the watcher that
    answers and keeps the NOTIFYs (close its transport when done)."""
    uri = f"sip:{extension}@{server[0]}:{server[1]}"
    return await _request(phone, "SUBSCRIBE", uri, uri, server, local_ip, [
        "Event: dialog", "Accept: application/dialog-info+xml", f"Expires: {expires}"])
