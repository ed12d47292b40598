"""bed.py: the cluster test's servers: three nats-server nodes with JetStream and three
chat-servers, one of each per host, started, killed (SIGKILL) and restarted; the NATS
monitoring endpoints and a minimal NATS protocol client for JetStream API requests.

Each server is a child of this process (asyncio subprocesses), so its death is an event: a
kill is followed by waiting for the exit status, never by a pause. Every started server is
recorded in the state directory's pids/ ("<pid> <program>") for run.sh's teardown, which runs
however this process ends. The hosts come from the topology file topology.sh wrote.
"""

import asyncio
import json
import os
import signal
import time


class Host:
    """One host: a chat server and a NATS node, in namespace ns (None in loopback mode)."""

    def __init__(self, line):
        name, ns, addr, nats, route, http, chat = line.split()
        self.name = name  # h1: the chat server's name, as --name gives it
        self.nats_name = "n" + name[1:]  # n1: its NATS node's server_name
        self.ns = None if ns == "-" else ns
        self.addr = addr
        self.nats_port, self.route_port = int(nats), int(route)
        self.http_port, self.chat_port = int(http), int(chat)
        self.nats = None  # asyncio.subprocess.Process, or None when not running
        self.chat = None

    def url(self):
        return "nats://%s:%d" % (self.addr, self.nats_port)


class BedError(Exception):
    """The bed itself could not do what was asked (a server did not start, ...)."""


async def http_get(addr, port, path, timeout):
    """GET http://addr:port/path; returns (status, body) or raises OSError / TimeoutError."""

    async def get():
        r, w = await asyncio.open_connection(addr, port)
        try:
            w.write(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, addr)).encode())
            await w.drain()
            data = await r.read()
        finally:
            w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        return status, body

    return await asyncio.wait_for(get(), timeout)


async def http_json(addr, port, path, timeout=2.0):
    """GET a monitoring endpoint as JSON; None when it does not answer with a document."""
    try:
        status, body = await http_get(addr, port, path, timeout)
        return json.loads(body) if status in (200, 503) else None
    except (OSError, asyncio.TimeoutError, ValueError, IndexError):
        return None


class Nats:
    """A NATS client speaking the text protocol, enough for JetStream API requests and
    publishes with headers; it answers the server's PING. One request at a time per reply
    subject; replies are matched by their subject."""

    def __init__(self):
        self.r = self.w = None
        self.pending = {}  # reply subject -> future of (headers, payload)
        self.seq = 0
        self.task = None
        self.inbox = "_INBOX.bed%d" % os.getpid()

    async def connect(self, addr, port, timeout=2.0):
        self.r, self.w = await asyncio.wait_for(asyncio.open_connection(addr, port), timeout)
        info = await asyncio.wait_for(self.r.readline(), timeout)
        if not info.startswith(b"INFO "):
            raise BedError("%s:%d did not greet as a NATS server: %r" % (addr, port, info))
        opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                "protocol": 1, "name": "cluster-bed"}
        self.w.write(b"CONNECT " + json.dumps(opts).encode() + b"\r\n")
        self.w.write(b"SUB " + self.inbox.encode() + b".* 1\r\nPING\r\n")
        await self.w.drain()
        line = await asyncio.wait_for(self.r.readline(), timeout)
        if not line.startswith(b"PONG"):
            raise BedError("NATS at %s:%d refused the connection: %r" % (addr, port, line))
        self.task = asyncio.ensure_future(self.read())

    async def read(self):
        try:
            while True:
                line = await self.r.readline()
                if not line:
                    break
                parts = line.split()
                if not parts:
                    continue
                if parts[0] == b"PING":
                    self.w.write(b"PONG\r\n")
                elif parts[0] in (b"MSG", b"HMSG"):
                    total = int(parts[-1])
                    hlen = int(parts[-2]) if parts[0] == b"HMSG" else 0
                    data = await self.r.readexactly(total + 2)
                    fut = self.pending.pop(parts[1].decode(), None)
                    if fut is not None and not fut.done():
                        fut.set_result((data[:hlen].decode(), data[hlen:total]))
        except (OSError, asyncio.IncompleteReadError):
            pass
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(BedError("the NATS connection closed"))

    async def request(self, subject, payload, timeout, headers=None):
        """Publishes payload (bytes) to subject with a reply subject of our own; returns
        (headers, payload) of the answer. headers: a dict, sent with HPUB."""
        self.seq += 1
        reply = "%s.%d" % (self.inbox, self.seq)
        fut = asyncio.get_running_loop().create_future()
        self.pending[reply] = fut
        if headers:
            head = "NATS/1.0\r\n" + "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
            head = head.encode()
            self.w.write(("HPUB %s %s %d %d\r\n" % (subject, reply, len(head),
                                                    len(head) + len(payload))).encode())
            self.w.write(head + payload + b"\r\n")
        else:
            self.w.write(("PUB %s %s %d\r\n" % (subject, reply, len(payload))).encode())
            self.w.write(payload + b"\r\n")
        await self.w.drain()
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(reply, None)

    async def js(self, api, body=None, timeout=2.0, headers=None, subject=None):
        """A JetStream API request ($JS.API.<api>) or, with subject, a JetStream publish;
        returns the JSON answer, or {"error": {...}} for no responders and timeouts."""
        payload = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
        try:
            head, data = await self.request(subject or "$JS.API." + api, payload, timeout,
                                            headers)
        except asyncio.TimeoutError:
            return {"error": {"code": 408, "description": "no answer in %.1f s" % timeout}}
        except (BedError, OSError) as e:
            return {"error": {"code": 0, "description": str(e)}}
        if head.startswith("NATS/1.0 503"):
            return {"error": {"code": 503, "description": "no responders"}}
        try:
            return json.loads(data)
        except ValueError:
            return {"error": {"code": 0, "description": "not JSON: %r" % data[:80]}}

    async def close(self):
        if self.w is not None:
            self.w.close()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass


class Bed:
    """The servers of the three hosts. chat_args: extra chat-server options for every host
    (--cluster is added here when clustered)."""

    def __init__(self, state, chat_server, nats_server, clustered, log):
        self.state = state
        self.chat_server, self.nats_server = chat_server, nats_server
        self.clustered = clustered
        self.log = log
        with open(os.path.join(state, "topology")) as f:
            self.hosts = [Host(line) for line in f if line.strip()]
        self.mode = "netns" if self.hosts[0].ns else "loopback"

    # ---------------------------------------------------------------- processes

    def wrap(self, host, argv):
        """argv, run inside host's namespace (netns mode)."""
        return (["ip", "netns", "exec", host.ns] if host.ns else []) + argv

    def record(self, what, proc, prog):
        with open(os.path.join(self.state, "pids", what), "w") as f:
            f.write("%d %s\n" % (proc.pid, prog))

    async def spawn(self, host, what, argv, stdout):
        logf = open(os.path.join(self.state, what + ".log"), "ab")
        proc = await asyncio.create_subprocess_exec(
            *self.wrap(host, argv), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdout else logf, stderr=logf,
            start_new_session=True)  # a terminal's Ctrl-C reaches run.sh, which tears down
        logf.close()
        self.record(what, proc, os.path.basename(argv[0]))
        return proc

    async def kill(self, proc):
        """SIGKILL, and the exit status collected: when this returns, the process is gone."""
        if proc is None or proc.returncode is not None:
            return
        proc.killed = True  # by us: a server found dead without this crashed
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()

    def log_tail(self, what, n=15):
        try:
            with open(os.path.join(self.state, what + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)\n"

    # ---------------------------------------------------------------- NATS

    def nats_conf(self, h):
        """The node's configuration: client, route and monitoring ports on the host's
        address only; its JetStream store in the state directory."""
        d = os.path.join(self.state, "nats", h.nats_name)
        os.makedirs(d, exist_ok=True)
        routes = ", ".join("nats-route://%s:%d" % (o.addr, o.route_port) for o in self.hosts)
        conf = os.path.join(d, "server.conf")
        with open(conf, "w") as f:
            f.write("server_name: %s\nlisten: %s:%d\nhttp: %s:%d\n"
                    "jetstream { store_dir: \"%s\" }\n"
                    "cluster {\n  name: libactor-cluster\n  listen: %s:%d\n  routes: [ %s ]\n}\n"
                    % (h.nats_name, h.addr, h.nats_port, h.addr, h.http_port,
                       os.path.join(d, "js"), h.addr, h.route_port, routes))
        return conf

    async def nats_start(self, h):
        if h.nats is not None and h.nats.returncode is None:
            raise BedError("%s is running already" % h.nats_name)
        h.nats = await self.spawn(h, h.nats_name, [self.nats_server, "-c", self.nats_conf(h)],
                                  stdout=False)

    async def nats_kill(self, h):
        await self.kill(h.nats)
        self.log("killed nats-server %s (%s) with SIGKILL" % (h.nats_name, h.url()))

    async def nats_restart(self, h, timeout):
        await self.kill(h.nats)
        await self.nats_start(h)
        await self.nats_ready([h], timeout)

    async def nats_ready(self, hosts, timeout):
        """Waits until every node in hosts answers /healthz with ok and names the JetStream
        meta leader. The monitoring port gives no event to wait on, so this polls it (every
        50 ms), bounded by timeout; raises BedError naming what was missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = []
            for h in hosts:
                if h.nats is None or h.nats.returncode is not None:
                    raise BedError("nats-server %s exited (status %s); its log ends:\n%s"
                                   % (h.nats_name, h.nats.returncode if h.nats else None,
                                      self.log_tail(h.nats_name)))
                health = await http_json(h.addr, h.http_port, "/healthz")
                jsz = await http_json(h.addr, h.http_port, "/jsz")
                if not health or health.get("status") != "ok":
                    missing.append("%s: /healthz %s" % (h.nats_name, health))
                elif not jsz or not (jsz.get("meta_cluster") or {}).get("leader"):
                    missing.append("%s: no JetStream meta leader yet" % h.nats_name)
            if not missing:
                return
            if time.monotonic() > deadline:
                raise BedError("NATS not ready after %.0f s: %s" % (timeout, "; ".join(missing)))
            await asyncio.sleep(0.05)

    async def meta_leaders(self):
        """{node: the meta leader it names (or None)} over the running nodes."""
        out = {}
        for h in self.hosts:
            if h.nats is not None and h.nats.returncode is None:
                jsz = await http_json(h.addr, h.http_port, "/jsz")
                out[h.nats_name] = ((jsz or {}).get("meta_cluster") or {}).get("leader")
        return out

    async def stream_leaders(self):
        """{stream name: its leader node}, as the running nodes report them (/jsz)."""
        out = {}
        for h in self.hosts:
            if h.nats is None or h.nats.returncode is not None:
                continue
            jsz = await http_json(h.addr, h.http_port, "/jsz?accounts=true&streams=true")
            for acc in (jsz or {}).get("account_details") or []:
                for st in acc.get("stream_detail") or []:
                    leader = (st.get("cluster") or {}).get("leader")
                    if leader:
                        out[st["name"]] = leader
        return out

    async def nats_client(self, h, timeout=2.0):
        nc = Nats()
        await nc.connect(h.addr, h.nats_port, timeout)
        return nc

    # ---------------------------------------------------------------- chat servers

    def chat_argv(self, h):
        argv = [self.chat_server, "--bind", h.addr, "--port", str(h.chat_port),
                "--name", h.name, "--workers", "2",
                # the test's clients send as fast as they can: no flood limit
                "--flood-rate", "0", "--flood-burst", "1000000"]
        if self.clustered:
            argv += ["--cluster", ",".join(o.url() for o in self.hosts)]
        return argv

    async def chat_start(self, h, timeout):
        """Starts h's chat server and waits for its "PORT" line (it listens then); the rest
        of its output goes on into its log."""
        if h.chat is not None and h.chat.returncode is None:
            raise BedError("chat host %s is running already" % h.name)
        h.chat = await self.spawn(h, "chat-" + h.name, self.chat_argv(h), stdout=True)
        logf = open(os.path.join(self.state, "chat-" + h.name + ".log"), "ab", buffering=0)
        try:
            while True:
                line = await asyncio.wait_for(h.chat.stdout.readline(), timeout)
                if not line:
                    raise BedError("chat-server %s exited (status %s); its log ends:\n%s" % (
                        h.name, await h.chat.wait(), self.log_tail("chat-" + h.name)))
                logf.write(line)
                if line.startswith(b"PORT "):
                    break
        except asyncio.TimeoutError:
            logf.close()
            raise BedError("chat-server %s printed no PORT line in %.0f s; its log ends:\n%s"
                           % (h.name, timeout, self.log_tail("chat-" + h.name)))
        asyncio.ensure_future(self.drain(h.chat.stdout, logf))

    async def drain(self, stream, logf):
        try:
            while True:
                line = await stream.readline()
                if not line:
                    break
                logf.write(line)
        finally:
            logf.close()

    async def chat_kill(self, h):
        await self.kill(h.chat)
        self.log("killed chat-server %s (%s:%d) with SIGKILL" % (h.name, h.addr, h.chat_port))

    async def chat_restart(self, h, timeout):
        await self.kill(h.chat)
        await self.chat_start(h, timeout)

    def crashed(self):
        """[(what, process)] of the servers that exited without being killed by us; each is
        listed once (then counted as killed)."""
        out = []
        for h in self.hosts:
            for what, proc in (("chat-" + h.name, h.chat), (h.nats_name, h.nats)):
                if proc is not None and proc.returncode is not None \
                        and not getattr(proc, "killed", False):
                    proc.killed = True
                    out.append((what, proc))
        return out

    async def chat_stop(self, h, timeout):
        """SIGTERM to h's chat server, which then stops in order; returns its exit status
        (None if it had not exited within timeout, when it is killed)."""
        if h.chat is None or h.chat.returncode is not None:
            return h.chat.returncode if h.chat else None
        h.chat.killed = True
        h.chat.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(h.chat.wait(), timeout)
        except asyncio.TimeoutError:
            await self.kill(h.chat)
            return None

    async def stop_all(self):
        for h in self.hosts:
            await self.kill(h.chat)
            await self.kill(h.nats)
