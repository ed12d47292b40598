"""scenarios.py: the cluster test's driver. Starts the 3-node NATS cluster and the three chat
hosts (bed.py), checks the bed, then runs the scenarios with real IRC connections (irc.py),
each in two variants: "single", every client on h1, and "across", clients spread over the
three hosts. Each prints one PASS or FAIL line with exact counts; the exit status is 1 when
any failed.

  bed       the NATS nodes are healthy and agree on the JetStream meta leader; an R3 stream
            takes an acknowledged message and every node reports it; each chat host answers
            registration on its own address with its own server name; at the end, each chat
            server exits 0 on SIGTERM; a server that exits by itself is a failure.
  channel   3 clients per host join one channel: each learns of each other member exactly
            once (in the NAMES of its JOIN or by a JOIN line); each sends LINES numbered lines,
            and each member gets every other member's lines exactly once, per sender in order,
            and its own back once (echo-message); private messages between every pair of
            hosts; WHOIS (311, 312 naming the user's host, 319 the channel); NAMES; a nick
            change and a QUIT, each seen exactly once by every other member.
  race      50 clients spread over the hosts register one nick at once: exactly one gets 001
            with it, the 49 others 433; every host's WHOIS shows the same winner; once the
            winner quits, the nick can be had on another host.
  hostkill  3 clients per host in one channel send numbered lines, paced; the chat server of
            the last host is killed with SIGKILL in the middle. A line is acknowledged when
            the sender gets it back (echo-message, which the server sends once the line is
            accepted). Every acknowledged line, from live hosts and the lines the dead host
            acknowledged before it died, reaches every surviving member exactly once, per
            sender in order; every line a live sender sent is acknowledged; every surviving
            member sees each dead host's user leave with a QUIT containing "*.net *.split"
            within SPLIT_BOUND of the kill, exactly once; the dead users' nicks can be had
            again; the host, restarted, answers and a newcomer sees the survivors in NAMES.
  natskill  as hostkill, but a NATS node is killed (the one leading the most streams of the
            chat servers, or else the test stream's leader): every acknowledged line reaches
            every member exactly once, in order; traffic continues (each sender's last lines,
            sent after the kill, are acknowledged); the test stream keeps every message it
            acknowledged, none twice; the node, restarted, catches up.

Without --cluster in chat-server's --help, the hosts run unlinked and the across variants fail,
saying so.
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter

from bed import Bed, BedError
from irc import Client, close_all, connect_all

UNLINKED = ("expected: chat-server has no --cluster, so the three hosts run unlinked and "
            "nothing crosses between them")


class Failed(Exception):
    """A phase's check failed: its summary and some examples."""

    def __init__(self, summary, details=()):
        super().__init__(summary)
        self.summary, self.details = summary, list(details)


def env_num(name, default, kind=float):
    v = os.environ.get(name)
    return kind(v) if v else default


class Run:
    """Settings (from the environment, see README.md) and the results."""

    def __init__(self, bed):
        self.bed = bed
        self.wait = env_num("CLUSTER_WAIT", 10.0)  # watchdog of every phase, seconds
        self.split_bound = env_num("CLUSTER_SPLIT_BOUND", 15.0)  # kill to the QUITs seen
        self.nats_bound = env_num("CLUSTER_NATS_BOUND", 30.0)  # a line's ack with a node down
        self.lines = env_num("CLUSTER_LINES", 100, int)  # lines per member in "channel"
        self.racers = env_num("CLUSTER_RACERS", 50, int)
        self.pace = env_num("CLUSTER_PACE_MS", 20.0) / 1000  # between a sender's lines
        self.window = env_num("CLUSTER_WINDOW", 20, int)  # a sender's lines unacknowledged
        self.passed = self.failed = 0
        self.stream_messages = 0  # what the test stream (BEDCHECK) has acknowledged
        self.loop = asyncio.get_running_loop()

    def deadline(self, seconds=None):
        return self.loop.time() + (self.wait if seconds is None else seconds)


class Scenario:
    """One scenario run: its phases add "what got/expected" counts; a failed check ends it."""

    def __init__(self, run, name, hosts):
        self.run, self.name, self.hosts = run, name, hosts
        self.counts = []
        self.clients = []
        self.across = len(hosts) > 1

    def note(self, text):
        self.counts.append(text)

    def ratio(self, what, got, want, extra=""):
        self.note("%s %d/%d%s" % (what, got, want, extra))
        return got == want

    def spread(self, prefix, n, hosts=None):
        hosts = hosts or self.hosts
        cs = [Client(hosts[i % len(hosts)], "%s%d" % (prefix, i)) for i in range(n)]
        self.clients += cs
        return cs

    def report(self, error):
        where = "on " + ",".join(h.name for h in self.hosts)
        line = "%s %s: %s" % ("FAIL" if error else "PASS", self.name, where)
        if self.counts:
            line += " | " + " | ".join(self.counts)
        if error:
            line += " | " + error.summary
        print(line, flush=True)
        if error:
            for d in error.details[:8]:
                print("    " + d, flush=True)
            if len(error.details) > 8:
                print("    ... and %d more" % (len(error.details) - 8), flush=True)
            if self.across and not self.run.bed.clustered:
                print("    (" + UNLINKED + ")", flush=True)
            self.run.failed += 1
        else:
            self.run.passed += 1


# ------------------------------------------------------------------------------ common phases

async def register_all(sc, clients, echo=True, note=True):
    """Connects and registers clients; each must get 001 from its own host."""
    bad = await connect_all(clients, sc.run.wait)
    if bad:
        raise Failed("connect %d/%d" % (len(clients) - len(bad), len(clients)),
                     ["%r: %s" % (c, e) for c, e in bad])
    dl = sc.run.deadline()
    got = await asyncio.gather(*(c.register(dl, echo) for c in clients))
    ok = [c for c, g in zip(clients, got)
          if g == "001" and c.registered.source == c.host.name]
    if len(ok) != len(clients):
        raise Failed("registered %d/%d" % (len(ok), len(clients)),
                     ["%r got %s from %s" % (c, g, c.registered.source if c.registered else "-")
                      for c, g in zip(clients, got) if c not in ok])
    if note:
        sc.note("registered %d/%d" % (len(ok), len(clients)))


def names_between(c, start, end_msg, chan):
    """The nicks of the 353 lines for chan from index start up to the line end_msg."""
    nicks = []
    for m in c.msgs[start:]:
        if m is end_msg:
            break
        if m.command == "353" and len(m.params) >= 4 and m.params[2].lower() == chan:
            nicks += [n.lstrip("@+") for n in m.params[3].split()]
    return nicks


async def join_all(sc, clients, chan):
    """Joins clients one after another (each waits for its own 366), then waits until every
    member has learned of every other exactly once: in the NAMES of its own JOIN, or by a
    JOIN line, never both, never twice."""
    at_join = {}
    for c in clients:
        start = len(c.msgs)
        c.send("JOIN " + chan)
        end = await c.expect(lambda m: m.command == "366" and m.params[1].lower() == chan,
                             sc.run.deadline(), start)
        if end is None:
            raise Failed("join: %r got no 366 for %s" % (c, chan))
        at_join[c] = Counter(names_between(c, start, end, chan))
    nicks = [c.nick for c in clients]

    def learned(c, other):
        joins = sum(1 for m in c.msgs if m.command == "JOIN" and m.nick == other
                    and m.params and m.params[0].lower() == chan)
        return at_join[c][other] + joins

    def all_known():
        return all(learned(c, o) >= 1 for c in clients for o in nicks if o != c.nick)

    dl = sc.run.deadline()
    await asyncio.gather(*(c.wait(all_known, dl) for c in clients))
    want = len(clients) * (len(clients) - 1)
    bad = [(c, o, learned(c, o)) for c in clients for o in nicks if o != c.nick
           and learned(c, o) != 1]
    if not sc.ratio("joins", want - len(bad), want) or bad:
        raise Failed("%d pairs: a member learned of another %s" % (
            len(bad), "never" if all(n == 0 for _, _, n in bad) else "not exactly once"),
            ["%r learned of %s %d times" % (c, o, n) for c, o, n in bad])


def check_lines(receivers, senders, chan, required, allowed):
    """Per receiver and sender (itself included: its echoes): the numbered lines got, checked
    against required[label] (a set, all must be there) and allowed[label] (the numbers
    sent); each at most once, in increasing order. Returns (delivered, wanted, problems)."""
    delivered = wanted = 0
    problems = []
    for r in receivers:
        for s in senders:
            got = r.lines[(chan, s.label)]
            need = required[s.label]
            wanted += len(need)
            have = set(got)
            delivered += len(need & have)
            missing = need - have
            dups = len(got) - len(have)
            disorder = sum(1 for a, b in zip(got, got[1:]) if b <= a)
            stray = have - allowed[s.label]
            what = "its own echoes" if r is s else "lines from %r" % s
            if missing:
                problems.append("%r is missing %d of %s (first: %s)" % (
                    r, len(missing), what, sorted(missing)[:5]))
            if dups:
                problems.append("%r got %d of %s twice" % (r, dups, what))
            if disorder:
                problems.append("%r got %s out of order %d times" % (r, what, disorder))
            if stray:
                problems.append("%r got %d of %s that were never sent" % (r, len(stray), what))
    return delivered, wanted, problems


async def wait_lines(sc, receivers, senders, chan, required, deadline):
    """Waits until every receiver has had as many lines of each sender as required, while
    lines keep coming: the deadline moves run.wait past each second in which some came (a
    busy machine delivers late; a stuck one delivers nothing), up to ten times run.wait."""
    def done(r):
        return lambda: all(len(r.lines[(chan, s.label)]) >= len(required[s.label])
                           for s in senders)

    def count():
        return sum(len(r.lines[(chan, s.label)]) for r in receivers for s in senders)

    loop = sc.run.loop
    cap = loop.time() + 10 * sc.run.wait
    seen = count()
    while True:
        until = min(deadline, loop.time() + 1.0)
        if all(await asyncio.gather(*(r.wait(done(r), until) for r in receivers))):
            return
        now = loop.time()
        if count() > seen:
            seen = count()
            deadline = min(cap, max(deadline, now + sc.run.wait))
        if now >= deadline:
            return


# ------------------------------------------------------------------------------ bed

async def bed_nats(run):
    """The NATS cluster formed: healthy nodes, one meta leader named by all, and an R3 stream
    (kept for natskill) that acknowledges a message every node then reports."""
    sc = Scenario(run, "bed/nats", run.bed.hosts)
    try:
        leaders = await run.bed.meta_leaders()
        if len(leaders) != len(run.bed.hosts) or len(set(leaders.values())) != 1 \
                or None in leaders.values():
            raise Failed("the nodes do not agree on a meta leader: %s" % leaders)
        sc.note("meta leader %s named by %d/%d" % (next(iter(leaders.values())),
                                                   len(leaders), len(run.bed.hosts)))
        nc = await run.bed.nats_client(run.bed.hosts[0])
        try:
            cfg = {"name": "BEDCHECK", "subjects": ["bedcheck.>"], "num_replicas": 3,
                   "storage": "file", "duplicate_window": 120 * 10**9}
            dl = time.monotonic() + run.wait
            while True:  # the first R3 stream can take a moment after the election
                res = await nc.js("STREAM.CREATE.BEDCHECK", cfg)
                if "error" not in res or time.monotonic() > dl:
                    break
                await asyncio.sleep(0.1)
            if "error" in res:
                raise Failed("creating an R3 stream: %s" % res["error"])
            if not await stream_publish(run, nc, 1, run.wait):
                raise Failed("the stream's first publish was not acknowledged")
        finally:
            await nc.close()
        seen = await stream_everywhere(run, "BEDCHECK", run.stream_messages, run.bed.hosts)
        sc.ratio("R3 stream holds 1 acked message on nodes", seen, len(run.bed.hosts))
        if seen != len(run.bed.hosts):
            raise Failed("not every node reports the stream's message and its current replicas")
    except (Failed, BedError, OSError) as e:
        sc.report(e if isinstance(e, Failed) else Failed(str(e)))
        return False
    sc.report(None)
    return True


async def stream_everywhere(run, stream, count, hosts):
    """How many of hosts report stream holding count messages with all 3 replicas current
    (asking each node in turn; replication is not an event we can wait on, so this polls,
    bounded by the phase watchdog)."""
    dl = time.monotonic() + run.wait
    while True:
        ok = 0
        for h in hosts:
            try:
                nc = await run.bed.nats_client(h)
            except (OSError, BedError, asyncio.TimeoutError):
                continue
            try:
                info = await nc.js("STREAM.INFO." + stream)
            finally:
                await nc.close()
            cl = info.get("cluster") or {}
            peers = [p for p in cl.get("replicas") or [] if p.get("current")]
            if (info.get("state") or {}).get("messages") == count and cl.get("leader") \
                    and len(peers) == len(run.bed.hosts) - 1:
                ok += 1
        if ok == len(hosts) or time.monotonic() > dl:
            return ok
        await asyncio.sleep(0.1)


async def bed_chat(run):
    """Each chat host answers registration on its own address with its own name."""
    sc = Scenario(run, "bed/chat", run.bed.hosts)
    cs = [Client(h, "bed%s" % h.name) for h in run.bed.hosts]
    sc.clients = cs
    try:
        await register_all(sc, cs, echo=False)
        sc.note(", ".join("%s at %s:%d" % (c.host.name, c.host.addr, c.host.chat_port)
                          for c in cs))
    except Failed as e:
        sc.report(e)
        return False
    finally:
        await close_all(cs)
    sc.report(None)
    return True


# ------------------------------------------------------------------------------ channel

async def channel(sc, tag):
    run = sc.run
    chan = "#channel-" + tag
    cs = sc.spread("ch%s" % tag[0], 3 * len(run.bed.hosts))
    await register_all(sc, cs)
    await join_all(sc, cs, chan)

    # Lines: every member sends LINES numbered lines at once.
    k = run.lines
    for c in cs:
        c.send(*("PRIVMSG %s :L %s %d" % (chan, c.label, i) for i in range(1, k + 1)))
    await asyncio.gather(*(c.flush() for c in cs))
    everything = {c.label: set(range(1, k + 1)) for c in cs}
    await wait_lines(sc, cs, cs, chan, everything, run.deadline())
    got, want, problems = check_lines(cs, cs, chan, everything, everything)
    if not sc.ratio("lines", got, want, " exactly once, in order (echoes included)") \
            or problems:
        raise Failed("channel lines wrong", problems)

    # Private messages: member i to i+1 and i+2 (with hosts in turn, another host each).
    n = len(cs)
    for i, c in enumerate(cs):
        c.send("PRIVMSG %s :P %s 1" % (cs[(i + 1) % n].nick, c.label),
               "PRIVMSG %s :P %s 2" % (cs[(i + 2) % n].nick, c.label))
    await asyncio.gather(*(c.flush() for c in cs))

    def pm_expect(i):
        return {cs[(i - 1) % n].label: [1], cs[(i - 2) % n].label: [2], cs[i].label: [1, 2]}

    def pm_done(i):
        return lambda: all(len(cs[i].lines[("*pm", s)]) >= len(v)
                           for s, v in pm_expect(i).items())

    dl = run.deadline()
    await asyncio.gather(*(c.wait(pm_done(i), dl) for i, c in enumerate(cs)))
    # (The two echoes may come in either order: they are for different receivers.)
    bad = ["%r got %s from %s, wanted %s" % (cs[i], cs[i].lines[("*pm", s)], s, v)
           for i in range(n) for s, v in pm_expect(i).items()
           if sorted(cs[i].lines[("*pm", s)]) != v]
    if not sc.ratio("private", 4 * n - len(bad), 4 * n, " (with echoes)") or bad:
        raise Failed("private messages wrong", bad)

    await whois_all(sc, cs, chan)
    await names_all(sc, cs, chan, [c.nick for c in cs])
    await nick_change(sc, cs, chan, "ch%snew" % tag[0])
    await quit_one(sc, cs, chan)

    # Late duplicates: the lines again, now that everything else has passed through.
    got, want, problems = check_lines(cs[1:], cs[1:], chan, everything, everything)
    if problems:
        raise Failed("channel lines wrong on a second look", problems)


async def whois_all(sc, cs, chan):
    """Member i asks WHOIS of member i+1: 311 with its user, 312 naming its host, 319 with
    the channel, 318."""
    n = len(cs)
    starts = [len(c.msgs) for c in cs]
    for i, c in enumerate(cs):
        c.send("WHOIS " + cs[(i + 1) % n].nick)
    await asyncio.gather(*(c.flush() for c in cs))
    dl = sc.run.deadline()
    ends = await asyncio.gather(*(c.expect(lambda m: m.command in ("318", "401"), dl, s)
                                  for c, s in zip(cs, starts)))
    bad = []
    for i, (c, s, end) in enumerate(zip(cs, starts, ends)):
        t = cs[(i + 1) % n]
        got = {m.command: m for m in c.msgs[s:] if len(m.params) > 1 and m.params[1] == t.nick}
        u, srv, ch = got.get("311"), got.get("312"), got.get("319")
        if end is None or end.command != "318":
            bad.append("%r: WHOIS %s ended with %s" % (c, t.nick, end))
        elif not u or u.params[2].lstrip("~") != t.user:
            bad.append("%r: WHOIS %s: 311 %s" % (c, t.nick, u))
        elif not srv or srv.params[2] != t.host.name:
            bad.append("%r: WHOIS %s: 312 %s, wanted server %s" % (c, t.nick, srv, t.host.name))
        elif not ch or chan not in [x.lstrip("@+").lower() for x in ch.params[-1].split()]:
            bad.append("%r: WHOIS %s: 319 %s, wanted %s" % (c, t.nick, ch, chan))
    if not sc.ratio("whois", n - len(bad), n) or bad:
        raise Failed("WHOIS wrong", bad)


async def names_all(sc, cs, chan, want):
    starts = [len(c.msgs) for c in cs]
    for c in cs:
        c.send("NAMES " + chan)
    await asyncio.gather(*(c.flush() for c in cs))
    dl = sc.run.deadline()
    ends = await asyncio.gather(*(c.expect(
        lambda m: m.command == "366" and m.params[1].lower() == chan, dl, s)
        for c, s in zip(cs, starts)))
    bad = []
    for c, s, end in zip(cs, starts, ends):
        got = names_between(c, s, end, chan) if end else []
        if sorted(got) != sorted(want):
            bad.append("%r: NAMES has %d nicks (%s...), wanted %d; missing %s, extra %s" % (
                c, len(got), " ".join(sorted(got)[:4]), len(want),
                sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]))
    if not sc.ratio("names", len(cs) - len(bad), len(cs)) or bad:
        raise Failed("NAMES wrong", bad)


async def seen_once(sc, what, watchers, pred, deadline):
    """Waits until each watcher has a line satisfying pred; returns the watchers that did
    not see exactly one."""
    await asyncio.gather(*(w.wait(lambda w=w: w.first(pred) is not None, deadline)
                           for w in watchers))
    return [(w, sum(1 for m in w.msgs if pred(m))) for w in watchers
            if sum(1 for m in w.msgs if pred(m)) != 1]


async def nick_change(sc, cs, chan, new):
    """The first member changes its nick: it and every other member see the NICK once; the
    last member's WHOIS finds the new nick."""
    c, old = cs[0], cs[0].nick
    c.send("NICK " + new)
    await c.flush()
    bad = await seen_once(sc, "nick", cs, lambda m: m.command == "NICK" and m.nick == old
                          and m.params == [new], sc.run.deadline())
    if not sc.ratio("nick", len(cs) - len(bad), len(cs)) or bad:
        raise Failed("the NICK %s -> %s was not seen exactly once" % (old, new),
                     ["%r saw it %d times" % b for b in bad])
    c.nick = new
    w = cs[-1]
    start = len(w.msgs)
    w.send("WHOIS " + new)
    await w.flush()
    end = await w.expect(lambda m: m.command in ("318", "401"), sc.run.deadline(), start)
    if end is None or end.command != "318":
        raise Failed("%r: WHOIS %s after the change ended with %s" % (w, new, end))


async def quit_one(sc, cs, chan):
    """The first member quits: every other member sees its QUIT once, with its message."""
    c = cs[0]
    c.send("QUIT :bye from " + c.label)
    await c.flush()
    bad = await seen_once(sc, "quit", cs[1:], lambda m: m.command == "QUIT" and m.nick == c.nick
                          and m.params and m.params[-1].endswith("bye from " + c.label),
                          sc.run.deadline())
    if not sc.ratio("quit", len(cs) - 1 - len(bad), len(cs) - 1) or bad:
        raise Failed("%s's QUIT was not seen exactly once" % c.nick,
                     ["%r saw it %d times" % b for b in bad])


# ------------------------------------------------------------------------------ race

async def race(sc, tag):
    run = sc.run
    nick = "racer" + tag[0]
    watchers = [Client(h, "w%s%s" % (tag[0], h.name)) for h in sc.hosts]
    sc.clients += watchers
    await register_all(sc, watchers, echo=False)
    racers = [Client(sc.hosts[i % len(sc.hosts)], nick, user="r%d" % i, label="r%d" % i)
              for i in range(run.racers)]
    sc.clients += racers
    bad = await connect_all(racers, run.wait)
    if bad:
        raise Failed("connect %d/%d" % (len(racers) - len(bad), len(racers)))
    # All connected: the registrations go out together, then everyone waits.
    dl = run.deadline()
    got = await asyncio.gather(*(r.register(dl, echo=False) for r in racers))
    count = Counter(got)
    winners = [r for r, g in zip(racers, got) if g == "001"]
    detail = ["%r won, on %s" % (w, w.host.name) for w in winners]
    detail += ["%d got %s" % (n, g) for g, n in count.items() if g not in ("001", "433")]
    sc.note("%d racers, 001 %d/1, 433 %d/%d" % (run.racers, len(winners), count["433"],
                                                 run.racers - 1))
    if len(winners) != 1 or count["433"] != run.racers - 1:
        raise Failed("not exactly one winner", detail)
    win = winners[0]
    if win.registered.params[0] != nick:
        raise Failed("the winner was welcomed as %s" % win.registered.params[0])
    # Every host's WHOIS shows the winner (its user name and its host).
    starts = [len(w.msgs) for w in watchers]
    for w in watchers:
        w.send("WHOIS " + nick)
    await asyncio.gather(*(w.flush() for w in watchers))
    dl = run.deadline()
    ends = await asyncio.gather(*(w.expect(lambda m: m.command in ("318", "401"), dl, s)
                                  for w, s in zip(watchers, starts)))
    wrong = []
    for w, s in zip(watchers, starts):
        u = w.first(lambda m: m.command == "311", s)
        srv = w.first(lambda m: m.command == "312", s)
        if not u or u.params[2].lstrip("~") != win.user or not srv \
                or srv.params[2] != win.host.name:
            wrong.append("%r: WHOIS %s gave %s %s, wanted user %s on %s" % (
                w, nick, u, srv, win.user, win.host.name))
    if not sc.ratio("whois shows the winner", len(watchers) - len(wrong), len(watchers)) \
            or wrong:
        raise Failed("the hosts disagree on who has the nick", wrong)
    # Released: once the winner has quit, a client on another host gets the nick.
    await close_all([r for r in racers if r is not win])
    win.send("QUIT :done")
    await win.flush()
    await win.wait(lambda: win.eof, run.deadline())
    other = sc.hosts[(sc.hosts.index(win.host) + 1) % len(sc.hosts)]
    if not await claim(sc, other, nick, "after"):
        raise Failed("%s could not be had on %s after its winner quit" % (nick, other.name))
    sc.note("had again on %s after the QUIT" % other.name)


async def claim(sc, host, nick, label):
    """Registers nick on host, retrying on 433 until the watchdog: a nick's release on
    another host gives this host no event to wait on. True when 001 came."""
    dl = sc.run.deadline()
    while True:
        c = Client(host, nick, user=label, label=label)
        sc.clients.append(c)
        try:
            await c.connect(sc.run.wait)
            got = await c.register(dl, echo=False)
        except (OSError, asyncio.TimeoutError):
            got = "EOF"
        if got == "001":
            return True
        await c.close()
        if sc.run.loop.time() > dl:
            return False
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------ traffic

class Traffic:
    """Paced senders into one channel: each sends "L <label> <n>", n = 1, 2, ..., one line
    every PACE, until its limit (none at first) or its connection's end; a line is
    acknowledged when its echo came back (echo-message). A sender with WINDOW lines
    unacknowledged waits for an echo, for a second at most (a line refused for good is never
    echoed), so that a machine slower than the pace gets fewer lines rather than a backlog."""

    def __init__(self, sc, clients, chan):
        self.sc, self.clients, self.chan = sc, clients, chan
        self.sent = {c.label: 0 for c in clients}
        self.limit = {c.label: None for c in clients}
        self.at_kill = {}
        self.tasks = [asyncio.ensure_future(self.send(c)) for c in clients]

    def open(self, c):
        return self.sent[c.label] - len(self.echoes(c)) < self.sc.run.window

    async def send(self, c):
        while not c.eof and (self.limit[c.label] is None
                             or self.sent[c.label] < self.limit[c.label]):
            if not self.open(c):
                await c.wait(lambda: self.open(c), self.sc.run.loop.time() + 1.0)
            self.sent[c.label] += 1
            c.send("PRIVMSG %s :L %s %d" % (self.chan, c.label, self.sent[c.label]))
            await asyncio.sleep(self.sc.run.pace)  # pacing the load, not waiting for anything

    def echoes(self, c):
        return c.lines[(self.chan, c.label)]

    def acked(self, c):
        return set(self.echoes(c))

    async def wait_acked(self, clients, at_least, deadline):
        return all(await asyncio.gather(*(
            c.wait(lambda c=c: len(self.echoes(c)) >= at_least, deadline) for c in clients)))

    def mark_kill(self):
        self.at_kill = dict(self.sent)

    async def finish(self, clients=None, more=0):
        """Each of clients (all by default) sends `more` lines more, then stops; returns when
        every sender has stopped."""
        for c in clients or self.clients:
            self.limit[c.label] = self.sent[c.label] + more
        await asyncio.gather(*self.tasks)

    def halt(self, clients):
        """clients send nothing more."""
        for c in clients:
            self.limit[c.label] = self.sent[c.label]

    def cancel(self):
        self.halt(self.clients)


async def traffic_setup(sc, tag, prefix):
    cs = sc.spread(prefix + tag[0], 3 * len(sc.run.bed.hosts))
    chan = "#%s-%s" % (prefix, tag)
    await register_all(sc, cs)
    await join_all(sc, cs, chan)
    return cs, chan


def split_quits(sc, live, dead, t_kill):
    """One QUIT per dead user per survivor, with "*.net *.split", within the bound."""
    run = sc.run
    want = len(live) * len(dead)
    bad, latest = [], 0.0
    for w in live:
        for d in dead:
            qs = w.quits[d.nick]
            if len(qs) != 1:
                bad.append("%r saw %d QUITs of %r" % (w, len(qs), d))
            elif "*.net *.split" not in qs[0].params[-1]:
                bad.append("%r: %r quit with '%s', not '*.net *.split'" % (
                    w, d, qs[0].params[-1]))
            elif qs[0].t - t_kill > run.split_bound:
                bad.append("%r saw %r quit %.1f s after the kill" % (w, d, qs[0].t - t_kill))
            else:
                latest = max(latest, qs[0].t - t_kill)
    ok = sc.ratio("split QUITs", want - len(bad), want,
                  " (latest %.1f s after the kill, bound %.0f s)" % (latest, run.split_bound))
    return ok, bad


async def hostkill(sc, tag):
    run, bed = sc.run, sc.run.bed
    victim = bed.hosts[-1]
    cs, chan = await traffic_setup(sc, tag, "hk")
    dead = [c for c in cs if c.host is victim]
    live = [c for c in cs if c.host is not victim]
    t = Traffic(sc, cs, chan)
    try:
        if not await t.wait_acked(cs, 20, run.deadline()):
            raise Failed("the senders' first 20 lines were not all acknowledged")
        t.mark_kill()
        await bed.chat_kill(victim)
        t_kill = run.loop.time()
        t.halt(dead)  # their connections are gone, or going
        await t.finish(live, 50)  # the live senders go on for 50 lines more each
    finally:
        t.cancel()
    sc.note("killed %s after %d lines, %d more from the live hosts" % (
        victim.name, sum(t.at_kill.values()), 50 * len(live)))
    allowed = {c.label: set(range(1, t.sent[c.label] + 1)) for c in cs}
    # Every live sender's lines acknowledged; then every acknowledged line everywhere, and
    # the dead users' QUITs.
    await wait_lines(sc, live, live, chan, allowed, run.deadline())
    required = {c.label: t.acked(c) for c in cs}
    quits = asyncio.gather(*(w.wait(lambda w=w: all(w.quits[d.nick] for d in dead),
                                    t_kill + run.split_bound) for w in live))
    await asyncio.gather(wait_lines(sc, live, cs, chan, required, run.deadline()), quits)

    unacked = sum(len(allowed[c.label] - t.acked(c)) for c in live)
    sent_live = sum(t.sent[c.label] for c in live)
    ok = sc.ratio("live lines acked", sent_live - unacked, sent_live)
    got, want, problems = check_lines(live, cs, chan, required, allowed)
    ok &= sc.ratio("acked lines delivered", got, want, " exactly once, in order")
    q_ok, q_bad = split_quits(sc, live, dead, t_kill)
    if not ok or not q_ok:
        raise Failed("lines or QUITs wrong after the kill of %s" % victim.name, problems + q_bad)

    # The dead users' nicks are free again; the host, restarted, rejoins.
    for d in dead[:1]:
        if not await claim(sc, live[0].host, d.nick, "again"):
            raise Failed("%s, a user of the dead host, could not be had again" % d.nick)
        sc.note("dead user's nick had again")
    await bed.chat_restart(victim, max(run.wait, 65))
    probe = Client(victim, "hk%sprobe" % tag[0])
    sc.clients.append(probe)
    await register_all(sc, [probe], note=False)
    newcomer = Client(victim if victim in sc.hosts else sc.hosts[0], "hk%snew" % tag[0])
    sc.clients.append(newcomer)
    await register_all(sc, [newcomer], note=False)
    newcomer.send("JOIN " + chan)
    end = await newcomer.expect(lambda m: m.command == "366", run.deadline())
    names = names_between(newcomer, 0, end, chan) if end else []
    want = sorted([c.nick for c in live] + [newcomer.nick])
    if sorted(names) != want:
        raise Failed("after the restart, NAMES %s on %s shows %s, wanted %s" % (
            chan, newcomer.host.name, sorted(names), want))
    sc.note("restarted %s answers; a newcomer's NAMES is right" % victim.name)


async def natskill(sc, tag):
    run, bed = sc.run, sc.run.bed
    cs, chan = await traffic_setup(sc, tag, "nk")
    nc = await bed.nats_client(bed.hosts[0])
    try:
        stream_ok = await stream_publish(run, nc, 20, run.wait)
    finally:
        await nc.close()
    t = Traffic(sc, cs, chan)
    try:
        if not await t.wait_acked(cs, 20, run.deadline()) or not stream_ok:
            raise Failed("before the kill, lines or test stream messages were not acknowledged")
        victim, why = await nats_victim(bed)
        t.mark_kill()
        await bed.nats_kill(victim)
        t_kill = run.loop.time()
        sc.note("killed %s (%s)" % (victim.nats_name, why))
        survivor = next(h for h in bed.hosts if h is not victim)
        nc = await bed.nats_client(survivor)
        try:
            stream_ok = await stream_publish(run, nc, 20, run.nats_bound)
            stream_seen = await stream_count(nc)
        finally:
            await nc.close()
        # Traffic goes on until each sender has had 20 lines sent after the kill
        # acknowledged (past the new stream leader's election, when the acknowledgement
        # waits for JetStream), then stops.
        resumed = await asyncio.gather(*(c.wait(
            lambda c=c: t.echoes(c) and t.echoes(c)[-1] >= t.at_kill[c.label] + 20,
            t_kill + run.nats_bound) for c in cs))
        await t.finish()
    finally:
        t.cancel()
    tail = 10
    allowed = {c.label: set(range(1, t.sent[c.label] + 1)) for c in cs}
    last = {c.label: set(range(t.sent[c.label] - tail + 1, t.sent[c.label] + 1)) for c in cs}
    await asyncio.gather(*(c.wait(lambda c=c: last[c.label] <= t.acked(c), run.deadline())
                           for c in cs))
    required = {c.label: t.acked(c) for c in cs}
    await wait_lines(sc, cs, cs, chan, required, run.deadline())
    ok = sc.ratio("senders going on after the kill", sum(1 for r in resumed if r), len(cs),
                  " (20 lines acked, within %.0f s)" % run.nats_bound)
    tails = sum(1 for c in cs if last[c.label] <= t.acked(c))
    ok &= sc.ratio("senders whose last %d lines were acked" % tail, tails, len(cs))
    sent = sum(t.sent.values())
    after = sum(t.sent[c.label] - t.at_kill[c.label] for c in cs)
    sc.note("sent %d (%d after the kill), never acked %d" % (
        sent, after, sum(len(allowed[c.label] - t.acked(c)) for c in cs)))
    got, want, problems = check_lines(cs, cs, chan, required, allowed)
    ok &= sc.ratio("acked lines delivered", got, want, " exactly once, in order")
    ok &= sc.ratio("test stream messages kept", stream_seen if stream_ok else 0,
                   run.stream_messages)
    if not ok:
        raise Failed("after the kill of %s" % victim.nats_name, problems)
    await bed.nats_restart(victim, run.wait)
    seen = await stream_everywhere(run, "BEDCHECK", run.stream_messages, bed.hosts)
    if not sc.ratio("nodes current after the restart", seen, len(bed.hosts)):
        raise Failed("the restarted node did not catch up")


async def stream_publish(run, nc, n, bound):
    """Publishes n more test stream messages, each with its own Nats-Msg-Id, retrying one
    until acknowledged (a retry is safe: the stream drops a duplicate id) within bound; the
    stream then holds run.stream_messages. False if one was never acknowledged."""
    dl = time.monotonic() + bound
    for _ in range(n):
        i = run.stream_messages + 1
        while True:
            ack = await nc.js(None, b"m%d" % i, subject="bedcheck.x",
                              headers={"Nats-Msg-Id": "bed-%d" % i}, timeout=1.0)
            if "seq" in ack:
                break
            if time.monotonic() > dl:
                return False
            await asyncio.sleep(0.1)  # a stream without a leader answers at once: retry
        run.stream_messages = i
    return True


async def stream_count(nc):
    info = await nc.js("STREAM.INFO.BEDCHECK")
    return (info.get("state") or {}).get("messages", -1)


async def nats_victim(bed):
    """The node to kill: the one leading the most of the chat servers' streams, or the test
    stream's leader when they have none."""
    leaders = await bed.stream_leaders()
    chat = Counter(v for k, v in leaders.items() if k != "BEDCHECK")
    if chat:
        name, n = chat.most_common(1)[0]
        why = "leader of %d of the chat servers' %d streams" % (n, sum(chat.values()))
    else:
        name = leaders.get("BEDCHECK") or next(iter((await bed.meta_leaders()).values()))
        why = "leader of the test stream; the chat servers have no streams"
    return next(h for h in bed.hosts if h.nats_name == name), why


# ------------------------------------------------------------------------------ main

SCENARIOS = {"channel": channel, "race": race, "hostkill": hostkill, "natskill": natskill}


async def run_scenario(run, name, variant):
    hosts = run.bed.hosts[:1] if variant == "single" else run.bed.hosts
    sc = Scenario(run, "%s/%s" % (name, variant), hosts)
    error = None
    try:
        await SCENARIOS[name](sc, variant)
    except Failed as e:
        error = e
    except (BedError, OSError, asyncio.TimeoutError) as e:
        error = Failed("the bed failed: %s" % e)
    finally:
        await close_all(sc.clients)
    sc.report(error)
    check_crashes(run)
    # A scenario that killed a server restarts it, even after a failure.
    for h in run.bed.hosts:
        try:
            if h.chat is None or h.chat.returncode is not None:
                await run.bed.chat_restart(h, max(run.wait, 65))
            if h.nats is None or h.nats.returncode is not None:
                await run.bed.nats_restart(h, run.wait)
        except BedError as e:
            print("cluster: could not restart %s: %s" % (h.name, e), flush=True)


def check_crashes(run):
    """A server that exited without being killed by the test is a failure of its own."""
    for what, proc in run.bed.crashed():
        print("FAIL %s exited by itself (status %s); its log ends:\n%s" % (
            what, proc.returncode, run.bed.log_tail(what)), flush=True)
        run.failed += 1


async def bed_stop(run):
    """Each chat server, told to stop (SIGTERM), exits 0: it survived the run, stopped in
    order, and (under AddressSanitizer) leaked nothing."""
    sc = Scenario(run, "bed/stop", run.bed.hosts)
    check_crashes(run)
    status = {h.name: await run.bed.chat_stop(h, max(run.wait, 10)) for h in run.bed.hosts}
    bad = ["%s exited with %s; its log ends:\n%s" % (n, st, run.bed.log_tail("chat-" + n))
           for n, st in status.items() if st != 0]
    sc.ratio("chat servers exiting 0 on SIGTERM", len(status) - len(bad), len(status))
    sc.report(Failed("a chat server did not stop cleanly", bad) if bad else None)


def has_cluster_option(chat_server):
    out = subprocess.run([chat_server, "--help"], capture_output=True, text=True)
    return "--cluster" in out.stdout + out.stderr


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state", required=True)
    ap.add_argument("--chat-server", required=True)
    ap.add_argument("--nats-server", required=True)
    ap.add_argument("--scenarios", default="channel race hostkill natskill")
    ap.add_argument("--variants", default="single across")
    a = ap.parse_args()

    clustered = has_cluster_option(a.chat_server)
    bed = Bed(a.state, a.chat_server, a.nats_server, clustered,
              lambda s: print("cluster: " + s, flush=True))
    run = Run(bed)
    print("cluster: chat-server %s" % (
        "has --cluster: the hosts are linked through NATS" if clustered else
        "has no --cluster: the hosts run unlinked, so the across scenarios will fail"),
        flush=True)
    t0 = time.monotonic()
    try:
        for h in bed.hosts:
            await bed.nats_start(h)
        await bed.nats_ready(bed.hosts, max(run.wait, 15))
        print("cluster: NATS nodes %s ready in %.1f s" % (
            ", ".join("%s %s" % (h.nats_name, h.url()) for h in bed.hosts),
            time.monotonic() - t0), flush=True)
        # A chat host waits up to 60 s at start for JetStream to answer (a NATS cluster that
        # has just formed on a busy machine may not have elected its leader): a watchdog.
        for h in bed.hosts:
            await bed.chat_start(h, max(run.wait, 65))
        print("cluster: chat hosts %s" % ", ".join(
            "%s %s:%d" % (h.name, h.addr, h.chat_port) for h in bed.hosts), flush=True)
        if await bed_nats(run) and await bed_chat(run):
            for name in a.scenarios.split():
                for variant in a.variants.split():
                    await run_scenario(run, name, variant)
            await bed_stop(run)
    except BedError as e:
        print("FAIL bed: %s" % e, flush=True)
        run.failed += 1
    finally:
        await bed.stop_all()
    print("cluster: %d passed, %d failed in %.0f s (%s mode)" % (
        run.passed, run.failed, time.monotonic() - t0, bed.mode), flush=True)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
