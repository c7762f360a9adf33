#!/usr/bin/env python3
"""The least that 256 MiB of output through a Redis stream costs.

    stream_floor.py PORT BYTES

The path of a distributed run's output (SPEC 11), with nothing of
tasker: `yes | head -c BYTES` is read in pieces of 1 MiB and appended to
a stream with XADD (four commands in flight), while a second process
reads the stream with XREAD (up to 16 entries at once), trims what it
read, and throws the bytes away without looking at them. Both speak the
protocol over plain sockets with buffers of several MiB, so what is
measured is the server and the kernel's copies: no run's output can come
back through the queue faster than this on the same machine
(bench/distribute.sh prints it beside tasker's figure).
"""

import os
import socket
import subprocess
import sys


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out += [b"$%d\r\n" % len(a), a, b"\r\n"]
    return b"".join(out)


class Replies:
    """Reads replies, skipping the bytes of large strings in place."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(8 << 20)
        self.view = memoryview(self.buf)
        self.start = self.end = 0

    def fill(self):
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):
            n = self.end - self.start
            self.buf[:n] = self.buf[self.start : self.end]
            self.start, self.end = 0, n
        n = self.sock.recv_into(self.view[self.end :])
        if not n:
            raise EOFError("server closed the connection")
        self.end += n

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.start, self.end)
            if i >= 0:
                line = bytes(self.buf[self.start : i])
                self.start = i + 2
                return line
            self.fill()

    def value(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.value() for _ in range(n)]
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            if n > 4096:
                need = n + 2
                while need:
                    if self.start == self.end:
                        self.fill()
                    take = min(need, self.end - self.start)
                    self.start += take
                    need -= take
                return n
            while self.end - self.start < n + 2:
                self.fill()
            data = bytes(self.buf[self.start : self.start + n])
            self.start += n + 2
            return data
        if kind == b"-":
            raise RuntimeError(line.decode())
        return line


def read_stream(port, key):
    sock = connect(port)
    replies = Replies(sock)
    last = b"0-0"
    got = 0
    while True:
        sock.sendall(command(b"XREAD", b"COUNT", b"16", b"BLOCK", b"1000", b"STREAMS", key, last))
        reply = replies.value()
        if reply is None:
            continue
        done = False
        for entry_id, fields in reply[0][1]:
            last = entry_id
            if fields[0] == b"o":
                got += fields[1] if isinstance(fields[1], int) else len(fields[1])
            done = done or fields[0] == b"end"
        sock.sendall(command(b"XTRIM", key, b"MINID", last))
        replies.value()
        if done:
            return got


def write_stream(port, key, total):
    sock = connect(port)
    replies = Replies(sock)
    line = b"x" * 99
    producer = subprocess.Popen(f"yes {line.decode()} | head -c {total}", shell=True, stdout=subprocess.PIPE)
    piece = bytearray(1 << 20)
    view = memoryview(piece)
    pipe = producer.stdout.raw
    in_flight = 0
    while True:
        # A pipe gives 64 KiB at a time: fill the piece.
        n = 0
        while n < len(piece):
            k = pipe.readinto(view[n:])
            if not k:
                break
            n += k
        if not n:
            break
        sock.sendall(b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\no\r\n$%d\r\n" % (len(key), key, n))
        sock.sendall(view[:n])
        sock.sendall(b"\r\n")
        in_flight += 1
        while in_flight > 4:
            replies.value()
            in_flight -= 1
    while in_flight:
        replies.value()
        in_flight -= 1
    sock.sendall(command(b"XADD", key, b"*", b"end", b"1"))
    replies.value()
    producer.wait()


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    port, total = int(sys.argv[1]), int(sys.argv[2])
    key = b"tasker-bench:floor:%d" % os.getpid()
    reader = os.fork()
    if reader == 0:
        got = read_stream(port, key)
        os._exit(0 if got == total else 1)
    write_stream(port, key, total)
    _, status = os.waitpid(reader, 0)
    sock = connect(port)
    sock.sendall(command(b"DEL", key))
    sock.recv(64)
    sys.exit(0 if status == 0 else 1)


main()
