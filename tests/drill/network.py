"""Hosts made of Linux network namespaces on one machine.

Each host is a namespace with its own loopback and one veth link to a bridge
in the machine's own namespace, so processes on different hosts reach each
other only through the hosts' addresses, and a host can be cut off by
setting its link down. Needs root (CAP_NET_ADMIN) and iproute2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

PREFIX = "csd"
SUBNET = "10.231.7"


def why_not_available() -> str:
    """Why the drill cannot make hosts here, or "" when it can."""
    if os.geteuid() != 0:
        return "the drill makes network namespaces, which needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"{PREFIX}probe{os.getpid() % 1000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return ""


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> None:
    command = (
        ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    )
    subprocess.run(command, check=check, capture_output=True)


@dataclass(frozen=True)
class Host:
    name: str  # "data", "web", "worker1" …
    number: int

    @property
    def namespace(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.number}"

    @property
    def link(self) -> str:
        return f"{PREFIX}{self.number}h"  # inside the host

    @property
    def peer(self) -> str:
        return f"{PREFIX}{self.number}b"  # on the bridge

    def command(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *args]

    def cut_off(self) -> None:
        _ip("link", "set", self.link, "down", namespace=self.namespace)


class Network:
    def __init__(self, names: list[str]):
        self.bridge = f"{PREFIX}br0"
        self.hosts = {name: Host(name, number) for number, name in enumerate(names, start=1)}

    def __enter__(self) -> Network:
        self.tear_down()  # what an interrupted earlier drill left behind
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in self.hosts.values():
            _ip("netns", "add", host.namespace)
            _ip("link", "add", host.link, "type", "veth", "peer", "name", host.peer)
            _ip("link", "set", host.link, "netns", host.namespace)
            _ip("link", "set", host.peer, "master", self.bridge)
            _ip("link", "set", host.peer, "up")
            _ip("addr", "add", f"{host.address}/24", "dev", host.link, namespace=host.namespace)
            _ip("link", "set", host.link, "up", namespace=host.namespace)
            _ip("link", "set", "lo", "up", namespace=host.namespace)
        return self

    def __exit__(self, *exc) -> None:
        self.tear_down()

    def tear_down(self) -> None:
        for host in self.hosts.values():
            _ip("netns", "delete", host.namespace, check=False)
            _ip("link", "delete", host.peer, check=False)
        _ip("link", "delete", self.bridge, check=False)
