"""Register many agent phones at once: a minimal SIP REGISTER client with digest auth (RFC
3261 / 2617, MD5, ``qop=auth`` when offered), over UDP on loopback.

Test-only. sipp takes one ``-au``/``-ap`` pair per process, so registering 40 phones would be
40 processes; this sends the 40 REGISTERs from one socket each and returns the final status
of every one (200 registered, 401 refused: a wrong password is challenged again).
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


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.responses: asyncio.Queue[str] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        if text.startswith("SIP/2.0"):
            self.responses.put_nowait(text)


async def _final(endpoint: _Endpoint) -> str:
    while True:
        response = await endpoint.responses.get()
        status = _STATUS.match(response)
        if status and int(status.group(1)) >= 200:
            return response


async def _answer(endpoint: _Endpoint) -> str:
    async with asyncio.timeout(ANSWER_TIMEOUT):
        return await _final(endpoint)


async def register(
    phone: Phone, server: tuple[str, int], local_ip: str, *, expires: int = 120,
) -> int:
    """REGISTER ``phone`` at ``server``; the final status after answering one challenge
    (each answer awaited at most ``ANSWER_TIMEOUT`` seconds)."""
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        _Endpoint, local_addr=(local_ip, 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        host = f"{server[0]}:{server[1]}"
        call_id, tag = secrets.token_hex(8), secrets.token_hex(4)

        def request(cseq: int, authorization: str = "") -> bytes:
            lines = [
                f"REGISTER sip:{host} SIP/2.0",
                f"Via: SIP/2.0/UDP {local_ip}:{port};rport;branch=z9hG4bK{secrets.token_hex(6)}",
                "Max-Forwards: 70",
                f"From: <sip:{phone.user}@{host}>;tag={tag}",
                f"To: <sip:{phone.user}@{host}>",
                f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:{phone.user}@{local_ip}:{port}>", f"Expires: {expires}",
            ]
            if authorization:
                lines.append(f"Authorization: {authorization}")
            return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()

        transport.sendto(request(1), server)
        response = await _answer(endpoint)
        status = int(response[8:11])
        if status != 401:
            return status
        challenge = dict(_CHALLENGE.findall(_header(response, "WWW-Authenticate")))
        uri = f"sip:{host}"
        ha1 = _md5(f"{phone.user}:{challenge['realm']}:{phone.password}")
        ha2 = _md5(f"REGISTER:{uri}")
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
        authorization = "Digest " + ", ".join(
            f"{key}={value}" if key in unquoted else f'{key}="{value}"'
            for key, value in fields.items())
        transport.sendto(request(2, authorization), server)
        return int((await _answer(endpoint))[8:11])
    finally:
        transport.close()


async def register_all(
    phones: list[Phone], server: tuple[str, int], local_ip: str
) -> dict[str, int]:
    """Register every phone concurrently; the final status by user."""
    statuses = await asyncio.gather(*(register(p, server, local_ip) for p in phones))
    return {phone.user: status for phone, status in zip(phones, statuses, strict=True)}
