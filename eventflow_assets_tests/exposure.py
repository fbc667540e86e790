"""What a running stack exposes: sockets listening beyond the loopback address, and where a secret
was written (files, Dagster's instance tables). Used by the full-stack tests."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import psutil
import psycopg
from psycopg import sql


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, and the IPv4-mapped ::ffff:127.x (Java's IPv6 sockets bound to 127.0.0.1)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def listening_beyond_loopback(processes: list[psutil.Process]) -> list[str]:
    """'pid name address:port' of every TCP socket in LISTEN, or bound UDP socket, not on loopback."""
    exposed = []
    for proc in processes:
        try:
            name = proc.name()
            conns = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        for c in conns:
            listening = c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and not c.raddr)
            if listening and not is_loopback(c.laddr.ip):
                exposed.append(f"{proc.pid} {name} {c.laddr.ip}:{c.laddr.port}")
    return exposed


def files_containing(secret: str, roots: list[Path], skip: set[Path] = frozenset()) -> list[Path]:
    """Every regular file under ``roots`` (recursively) whose bytes contain ``secret``."""
    needle = secret.encode()
    found = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            if path not in skip and needle in path.read_bytes():
                found.append(path)
    return found


def tables_containing(postgres_url: str, secret: str) -> dict[str, int]:
    """{table: rows whose text contains ``secret``} over every table of the public schema."""
    found = {}
    with psycopg.connect(postgres_url) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            (n,) = conn.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE strpos(t::text, %s) > 0").format(
                sql.Identifier(table)), (secret,)).fetchone()
            if n:
                found[table] = n
    return found
