"""irc.py: a scripted IRC client for the cluster test: a real TCP connection that registers
(NICK, USER, optionally CAP echo-message), answers PING, and keeps every line it receives,
parsed, with the time it came; waits are for a condition over those lines, bounded by a
deadline (a watchdog, never a pause).

Lines the scenarios send to channels and users carry their sender and a number in the text,
"L <sender> <n>" and "P <sender> <n>"; the client files the ones it receives by sender as they
come, so a wait for "every line of every sender" costs nothing per line.
"""

import asyncio
from collections import defaultdict


class Msg:
    """One parsed line: tags (raw), source (nick!user@host or server), command, params."""

    __slots__ = ("tags", "source", "command", "params", "t")

    def __init__(self, tags, source, command, params, t):
        self.tags, self.source, self.command, self.params, self.t = tags, source, command, params, t

    @property
    def nick(self):
        return self.source.split("!", 1)[0] if self.source else ""

    def __repr__(self):
        return "<%s %s %s>" % (self.source, self.command, self.params)


def parse(line, t):
    tags = source = ""
    if line.startswith("@"):
        tags, _, line = line.partition(" ")
    if line.startswith(":"):
        source, _, line = line[1:].partition(" ")
    params = []
    while line:
        line = line.lstrip(" ")
        if line.startswith(":"):
            params.append(line[1:])
            break
        word, _, line = line.partition(" ")
        if word:
            params.append(word)
    command = params.pop(0).upper() if params else ""
    return Msg(tags, source, command, params, t)


def numbered(kind, text):
    """(sender, n) of a numbered line "KIND sender n", else None."""
    parts = text.split(" ")
    if len(parts) == 3 and parts[0] == kind and parts[2].isdigit():
        return parts[1], int(parts[2])
    return None


class Client:
    """One IRC connection to one host. label: the client's own name in numbered lines (it
    stays when the nick changes)."""

    def __init__(self, host, nick, user=None, label=None):
        self.host = host
        self.nick = nick
        self.user = user or nick
        self.label = label or nick
        self.msgs = []
        self.r = self.w = None
        self.eof = False
        self.changed = asyncio.Event()
        self.task = None
        self.registered = None  # the Msg that ended registration: 001, or the refusal
        # (target, sender) -> [n, ...] of numbered channel lines, in the order received;
        # ("*pm", sender) for private ones. The sender's own echoes are under its own label.
        self.lines = defaultdict(list)
        self.quits = defaultdict(list)  # nick -> the QUIT lines of that nick

    def __repr__(self):
        return "%s@%s" % (self.label, self.host.name)

    async def connect(self, timeout):
        self.r, self.w = await asyncio.wait_for(
            asyncio.open_connection(self.host.addr, self.host.chat_port), timeout)
        self.task = asyncio.ensure_future(self.read())

    async def read(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                raw = await self.r.readline()
                if not raw:
                    break
                m = parse(raw.decode("utf-8", "replace").rstrip("\r\n"), loop.time())
                self.msgs.append(m)
                if m.command == "PING":
                    self.send("PONG :" + (m.params[-1] if m.params else ""))
                elif m.command == "PRIVMSG" and len(m.params) == 2:
                    self.file_numbered(m)
                elif m.command == "QUIT":
                    self.quits[m.nick].append(m)
                self.changed.set()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        self.eof = True
        self.changed.set()

    def file_numbered(self, m):
        target, text = m.params
        if target.startswith("#"):
            got = numbered("L", text)
            if got:
                self.lines[(target, got[0])].append(got[1])
        else:
            got = numbered("P", text)
            if got:
                self.lines[("*pm", got[0])].append(got[1])

    def send(self, *lines):
        """Queues lines for the server (they are written as the loop runs); a connection
        that is gone drops them (a killed host's clients)."""
        if self.w is None or self.w.is_closing():
            return
        self.w.write("".join(line + "\r\n" for line in lines).encode())

    async def flush(self):
        try:
            await self.w.drain()
        except (OSError, AttributeError):
            pass

    async def wait(self, pred, deadline):
        """Waits until pred() holds or the deadline (loop time) passes; returns pred()."""
        loop = asyncio.get_running_loop()
        while True:
            self.changed.clear()
            if pred():
                return True
            left = deadline - loop.time()
            if left <= 0 or self.eof:
                return pred()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def first(self, pred, start=0):
        for m in self.msgs[start:]:
            if pred(m):
                return m
        return None

    async def expect(self, pred, deadline, start=0):
        """The first line from index start on that satisfies pred, waiting for it until the
        deadline; None if none came."""
        found = []

        def check():
            m = self.first(pred, start)
            if m is not None:
                found.append(m)
            return m is not None

        await self.wait(check, deadline)
        return found[0] if found else None

    async def register(self, deadline, echo=True):
        """NICK and USER (with CAP echo-message first when echo), then waits for 001 or a
        refusal (a 4xx numeric, ERROR, or the connection closing). Returns the numeric
        ("001", "433", ...), "ERROR", "EOF" or "TIMEOUT"; self.registered keeps the line."""
        if echo:
            self.send("CAP LS 302")
        self.send("NICK " + self.nick, "USER %s 0 * :cluster test %s" % (self.user, self.label))
        if echo:
            self.send("CAP REQ :echo-message", "CAP END")
        await self.flush()
        m = await self.expect(lambda m: m.command == "001" or m.command == "ERROR" or (
            len(m.command) == 3 and m.command[0] in "45"), deadline)
        self.registered = m
        if m is None:
            return "EOF" if self.eof else "TIMEOUT"
        if m.command == "001" and echo and not self.first(
                lambda x: x.command == "CAP" and len(x.params) > 2 and x.params[1] == "ACK"
                and "echo-message" in x.params[2]):
            return "NO-ECHO"
        return m.command

    async def close(self):
        self.eof = True
        if self.w is not None:
            self.w.close()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass


async def connect_all(clients, timeout):
    """Connects every client; returns the list of those that failed, with the reason."""
    results = await asyncio.gather(*(c.connect(timeout) for c in clients), return_exceptions=True)
    return [(c, r) for c, r in zip(clients, results) if isinstance(r, BaseException)]


async def close_all(clients):
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
