"""A DNS server the tests serve on a loopback UDP port: answers from a dict, NXDOMAIN for
unknown names, SERVFAIL on demand. Used by the discovery tests and the deployment tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer", "serve_dns"]


class DnsServer(asyncio.DatagramProtocol):
    """Answers from `records`: {(name, type): [rdata text, …]}; unknown names are NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.servfail = False
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        resp = dns.message.make_response(query)
        q = query.question[0]
        name = q.name.to_text()
        rtype = dns.rdatatype.to_text(q.rdtype)
        if self.servfail:
            resp.set_rcode(dns.rcode.SERVFAIL)
        elif self.records.get((name, rtype)):
            resp.answer.append(
                dns.rrset.from_text_list(q.name, 0, "IN", rtype, self.records[(name, rtype)])
            )
        elif not any(n == name for n, _ in self.records):
            resp.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(resp.to_wire(), addr)


@contextlib.asynccontextmanager
async def serve_dns() -> AsyncIterator[tuple[DnsServer, int]]:
    """The server and its port, on 127.0.0.1, for the block."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(DnsServer, local_addr=("127.0.0.1", 0))
    try:
        yield proto, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


