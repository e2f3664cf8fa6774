"""Typing at plinth's serial line from a boot test: tools/run starts the emulator
with the serial line on a socket (QEMU: a Unix socket it waits on; Bochs: a TCP
port), this module connects, keeps everything received in the run's log (which
tools/run watches for panics and poweroff as in every boot test) and lets a test
send bytes and wait for what comes back.

    with Session("qemu", iso, tmp_path) as s:
        s.expect(r"plinth> ")
        s.send("list\\r")
        s.expect(r"alpha\\s+running")
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import plinthboot


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Session:
    def __init__(self, emulator, image, tmp_path, smp=1, timeout=600, memory=None):
        self.emulator = emulator
        self.log_path = os.path.join(str(tmp_path), "serial.log")
        self.text = ""
        self.committed, self.done, self.cur, self.col, self.esc = "", [], [], 0, ""
        self.lock = threading.Condition()
        self.closed = False
        if emulator == "qemu":
            self.address = os.path.join(str(tmp_path), "serial.sock")
        else:
            self.address = str(free_port())
        cmd = [sys.executable, plinthboot.RUN, emulator, "--firmware", "bios", "--image", image,
               "--smp", str(smp), "--timeout", str(timeout), "--log", self.log_path,
               "--serial-socket", self.address]
        if memory:
            cmd += ["--memory", str(memory)]
        self.stderr_path = os.path.join(str(tmp_path), "run.err")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=plinthboot.ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.sock = self._connect()
        self.log = open(self.log_path, "ab")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _connect(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tools/run ended (status {self.proc.returncode}) before the serial "
                                     f"socket was there:\n{self.run_messages()}")
            try:
                if self.emulator == "qemu":
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.address)
                else:
                    s = socket.create_connection(("127.0.0.1", int(self.address)))
                return s
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"no serial socket at {self.address} after 60 s:\n{self.run_messages()}")

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                data = b""
            with self.lock:
                if not data:
                    self.closed = True
                    self.lock.notify_all()
                    return
                self.log.write(data)
                self.log.flush()
                self._add(data.decode(errors="replace"))
                self.lock.notify_all()

    def _add(self, chunk):
        """Keeps self.text as a terminal would show it, for matching: a carriage
        return goes back to the line's start and what follows overwrites it (the
        shell takes its prompt off the line with CR, blanks, CR before a guest's
        line, and redraws it after), backspace steps back, ESC [ K erases to the
        end; each finished line loses its trailing blanks.  The log file keeps the
        bytes as they came."""
        i = 0
        while i < len(chunk):
            c = chunk[i]
            i += 1
            if self.esc:
                self.esc += c
                if self.esc == "\x1b[" or (len(self.esc) > 2 and not ("@" <= c <= "~")):
                    continue
                if self.esc == "\x1b[K":
                    del self.cur[self.col:]
                self.esc = ""
            elif c == "\x1b":
                self.esc = c
            elif c == "\r":
                self.col = 0
            elif c == "\n":
                self.done.append("".join(self.cur).rstrip(" ") + "\n")
                self.cur, self.col = [], 0
            elif c == "\b":
                self.col = max(0, self.col - 1)
            else:
                if self.col < len(self.cur):
                    self.cur[self.col] = c
                else:
                    self.cur.append(c)
                self.col += 1
        if len(self.done) > 64:
            self.committed += "".join(self.done)
            self.done = []
        self.text = self.committed + "".join(self.done) + "".join(self.cur)

    def run_messages(self):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def fail(self, why):
        tail = self.text[-6000:]
        raise AssertionError(f"{why}\n--- serial log (last 6000 characters) ---\n{tail}\n"
                             f"--- tools/run ---\n{self.run_messages()}")

    def mark(self):
        """A position in the text: expect(..., since=mark) looks only after it.  The
        start of the line being written: a carriage return may still rewrite it
        (the shell's prompt, taken off for the next line)."""
        with self.lock:
            return len(self.text) - len(self.cur)

    def expect(self, pattern, timeout=60, since=0):
        """Waits for pattern (a regex, MULTILINE) in what arrived after `since`;
        returns the match (its end is a position for later expects)."""
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                m = rx.search(self.text, since)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    self.fail(f"no {pattern!r} within {timeout} s")
                if self.closed and not rx.search(self.text, since):
                    self.fail(f"the serial line closed before {pattern!r} came")
                self.lock.wait(min(left, 1.0))

    def send(self, data, chunk=8, pause=None):
        """Types data, a few bytes at a time: plinth reads its UART every few
        milliseconds, and Bochs takes from the socket no faster than that."""
        if isinstance(data, str):
            data = data.encode()
        if pause is None:
            pause = 0.05 if self.emulator == "bochs" else 0.02
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            time.sleep(pause)

    def command(self, line, expect, timeout=60):
        """Types a shell line and waits for expect after it; returns the match."""
        at = self.mark()
        self.send(line + "\r")
        return self.expect(expect, timeout, since=at)

    def wait_exit(self, timeout=120):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"tools/run did not end within {timeout} s")

    def close(self):
        if self.proc.poll() is None:
            # tools/run stops its emulator on SIGINT (Bochs ignores SIGTERM).
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self.sock.close()
        except OSError:
            pass
        self.reader.join(5)
        self.log.close()
        self.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
