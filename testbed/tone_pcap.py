"""PCMA tone captures for sipp's ``play_pcap_audio``: each side of a call plays its own pitch.

sipp ships one speech capture (``g711a.pcap``, about 8 s); a recording test needs longer audio
and two sources it can tell apart in the file: a caller at one frequency and an agent at another
show which side landed on which stereo channel, and a muted interval stands out as silence
inside a continuous tone. The capture is written here (Ethernet/IPv4/UDP/RTP, 20 ms frames,
G.711 A-law) so the testbed needs no packet library; sipp rewrites addresses and ports.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
PCMA_PAYLOAD_TYPE = 8
_LINKTYPE_ETHERNET = 1
_AMPLITUDE = 8000  # about -12 dBFS: loud, far from clipping


def alaw(sample: int) -> int:
    """G.711 A-law code of one 16-bit linear sample (ITU-T G.711, segment encoding)."""
    sign = 0x80 if sample >= 0 else 0x00
    magnitude = (sample if sample >= 0 else ~sample) >> 3  # 12-bit magnitude, one's complement
    if magnitude < 32:
        code = magnitude >> 1
    else:
        segment = magnitude.bit_length() - 5  # 1..7
        code = (segment << 4) | ((magnitude >> segment) & 0x0F)
    return (code | sign) ^ 0x55


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp_frame(payload: bytes, source_port: int, target_port: int) -> bytes:
    udp = struct.pack("!HHHH", source_port, target_port, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ethernet = b"\x00" * 12 + b"\x08\x00"
    return ethernet + ip + udp


def write_tone_pcap(target: Path, frequency: float, seconds: float, ssrc: int = 0x5EED) -> Path:
    """A capture of ``seconds`` of a ``frequency`` Hz PCMA tone, paced at 20 ms per packet."""
    samples = int(seconds * RATE / FRAME_SAMPLES) * FRAME_SAMPLES
    audio = bytes(
        alaw(round(_AMPLITUDE * math.sin(2 * math.pi * frequency * n / RATE)))
        for n in range(samples)
    )
    return write_pcma_pcap(target, audio, ssrc)


def write_pcma_pcap(target: Path, audio: bytes, ssrc: int = 0x5EED) -> Path:
    """A capture of G.711 A-law ``audio`` (8 kHz, one byte a sample) as RTP, 20 ms per packet;
    a last partial frame is dropped."""
    packets = []
    for index in range(len(audio) // FRAME_SAMPLES):
        first = index * FRAME_SAMPLES
        payload = audio[first:first + FRAME_SAMPLES]
        rtp = struct.pack(
            "!BBHII", 0x80, PCMA_PAYLOAD_TYPE | (0x80 if index == 0 else 0), index & 0xFFFF,
            first, ssrc,
        ) + payload
        packets.append((index * 20_000, rtp))
    return _write_rtp_pcap(target, packets)


def _write_rtp_pcap(target: Path, packets: list[tuple[int, bytes]]) -> Path:
    """A capture of RTP packets, each sent ``micros`` after the first."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET)]
    for micros, rtp in packets:
        packet = _udp_frame(rtp, 6000, 6002)
        out.append(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000,
                               len(packet), len(packet)))
        out.append(packet)
    target.write_bytes(b"".join(out))
    return target


DTMF_PAYLOAD_TYPE = 101  # what the testbed's scenarios offer for telephone-event
_DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
_DTMF_TONE_FRAMES = 8  # 160 ms of tone per key
_DTMF_GAP_FRAMES = 15  # 300 ms between keys


@dataclass
class DtmfStream:
    """Where the next key's packets start: keys played from several captures in one call
    must go on numbering where the last capture stopped (Asterisk drops events whose sequence
    number or timestamp goes back)."""

    sequence: int = 0
    frame: int = 0


def write_dtmf_pcap(
    target: Path, keys: str, stream: DtmfStream | None = None, ssrc: int = 0xD7F
) -> Path:
    """RFC 2833 events for ``keys`` (digits, ``*``, ``#``) as one capture. Each key is its own
    event with its own RTP timestamp: sipp's bundled one-digit captures all carry the same
    timestamp and sequence numbers, so Asterisk takes a second key played from them as a
    repeat of the first. ``stream`` carries the numbering from one capture to the next."""
    stream = stream or DtmfStream()
    packets: list[tuple[int, bytes]] = []
    sequence, frame = stream.sequence, stream.frame
    first_frame = frame
    for key in keys:
        if key not in _DTMF_EVENTS:
            raise ValueError(f"no RFC 2833 event for {key!r} in {keys!r}")
        start = frame * FRAME_SAMPLES
        for step in range(_DTMF_TONE_FRAMES + 3):  # the tone, then the end packet three times
            end = step >= _DTMF_TONE_FRAMES
            duration = FRAME_SAMPLES * min(step + 1, _DTMF_TONE_FRAMES)
            marker = 0x80 if step == 0 else 0
            rtp = struct.pack(
                "!BBHIIBBH", 0x80, DTMF_PAYLOAD_TYPE | marker, sequence & 0xFFFF, start, ssrc,
                _DTMF_EVENTS[key], (0x80 if end else 0) | 10, duration,
            )
            sent = min(frame + step, frame + _DTMF_TONE_FRAMES) - first_frame
            packets.append((sent * 20_000, rtp))
            sequence += 1
        frame += _DTMF_TONE_FRAMES + _DTMF_GAP_FRAMES
    stream.sequence, stream.frame = sequence, frame
    return _write_rtp_pcap(target, packets)
