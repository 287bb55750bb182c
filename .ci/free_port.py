"""Prints N (the argument, default 1) distinct local ports free for TCP and
UDP on 127.0.0.1, for servers the CI starts a moment later. Drawn from
below the kernel's ephemeral range (as tests/support/ports.rs does): an
outgoing connection made meanwhile cannot take them. Falls back to bind(0)
where that range leaves no room."""

import random
import socket
import sys

FLOOR = 10_000


def free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick(taken):
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    if low > FLOOR + 1_000:
        for _ in range(64):
            port = random.randrange(FLOOR, low)
            if port not in taken and free(port):
                return port
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in taken and free(port):
            return port


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    taken = []
    for _ in range(count):
        taken.append(pick(taken))
    print(" ".join(map(str, taken)))


main()
