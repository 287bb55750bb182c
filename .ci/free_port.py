"""Prints a local port free for TCP and UDP on 127.0.0.1, for a server the
CI starts a moment later. Drawn from below the kernel's ephemeral range
(as tests/support/ports.rs does): an outgoing connection made meanwhile
cannot take it. Falls back to bind(0) where that range leaves no room."""

import random
import socket

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


def main():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    if low > FLOOR + 1_000:
        for _ in range(64):
            port = random.randrange(FLOOR, low)
            if free(port):
                print(port)
                return
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if free(port):
            print(port)
            return


main()
