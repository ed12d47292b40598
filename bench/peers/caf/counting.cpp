// counting.cpp: the CAF peer of bench/counting.c: message throughput into one actor, from one
// sender and from four.
//
// Usage: counting [messages] [window]   (defaults 10,000,000 and 65536; window >= 2)
//
// The same protocol as counting.c, with event-based actors: senders send their share in chunks
// of CHUNK, then send themselves a CONTINUE so they yield between chunks; the counter checks that
// every message arrives exactly once and in order per sender. A message is a uint64_t with the
// sender's index in the top byte and its sequence number below. Flow control is the same credit
// protocol: a sender may have `window` messages unacknowledged, and the counter grants window/2
// more after each window/2 messages from a sender.
#include "bench.hpp"

#include <vector>

using namespace caf;

using start_atom = atom_constant<atom("start")>;
using continue_atom = atom_constant<atom("continue")>;
using credit_atom = atom_constant<atom("credit")>;

static constexpr uint64_t chunk = 1000;
static constexpr int seq_bits = 56;
static constexpr uint64_t seq_mask = (uint64_t{1} << seq_bits) - 1;

struct tally {
	uint64_t expected, count = 0;
	uint64_t t1 = 0;
	int ok = 0; // 1: total reached in order; -1: a check failed
};

struct counter_state {
	std::vector<actor> senders;
	std::vector<uint64_t> next_seq;
};

behavior counter(stateful_actor<counter_state> *self, tally *t, uint64_t grant)
{
	auto stop_all = [=](int ok) {
		t->t1 = bench_now_ns();
		t->ok = ok;
		for (auto &s : self->state.senders)
			self->send_exit(s, exit_reason::user_shutdown);
		self->quit();
	};
	return {
	    [=](std::vector<actor> &senders) {
		    self->state.senders = std::move(senders);
		    self->state.next_seq.assign(self->state.senders.size(), 0);
	    },
	    [=](uint64_t v) {
		    auto &st = self->state;
		    size_t idx = v >> seq_bits;
		    uint64_t seq = v & seq_mask;
		    if (idx >= st.next_seq.size() || seq != st.next_seq[idx]) {
			    std::fprintf(stderr, "counting: sender %zu: got message %" PRIu64 "\n",
			                 idx, seq);
			    stop_all(-1);
			    return;
		    }
		    st.next_seq[idx] = seq + 1;
		    if ((seq + 1) % grant == 0)
			    self->send(st.senders[idx], credit_atom::value);
		    if (++t->count == t->expected)
			    stop_all(1);
	    },
	};
}

struct sender_state {
	uint64_t remaining, seq = 0, base, credit;
	bool stalled = false; // waiting for credit, with no CONTINUE in the mailbox
};

behavior sender(stateful_actor<sender_state> *self, actor counter, unsigned index, uint64_t share,
                uint64_t grant)
{
	self->state.remaining = share;
	self->state.base = uint64_t{index} << seq_bits;
	self->state.credit = 2 * grant;
	auto send_chunk = [=] {
		auto &st = self->state;
		uint64_t n = std::min({st.remaining, chunk, st.credit});
		for (uint64_t i = 0; i < n; i++)
			self->send(counter, st.base | st.seq++);
		st.remaining -= n;
		st.credit -= n;
		if (st.remaining == 0)
			return; // done; stays alive until the counter stops it
		if (st.credit == 0) {
			st.stalled = true;
			return;
		}
		self->send(self, continue_atom::value);
	};
	return {
	    [=](start_atom) { send_chunk(); },
	    [=](continue_atom) { send_chunk(); },
	    [=](credit_atom) {
		    self->state.credit += grant;
		    if (self->state.stalled) {
			    self->state.stalled = false;
			    send_chunk();
		    }
	    },
	};
}

static int count(const char *name, unsigned nsenders, uint64_t messages, uint64_t window)
{
	tally t;
	t.expected = messages;
	uint64_t t0;
	{
		actor_system_config cfg;
		bench_config(cfg);
		actor_system sys{cfg};
		auto c = sys.spawn(counter, &t, window / 2);
		std::vector<actor> senders;
		for (unsigned i = 0; i < nsenders; i++)
			senders.push_back(sys.spawn(
			    sender, c, i, messages / nsenders + (i < messages % nsenders ? 1 : 0),
			    window / 2));
		anon_send(c, senders);
		t0 = bench_now_ns();
		for (auto &s : senders)
			anon_send(s, start_atom::value);
		sys.await_all_actors_done();
	}
	if (t.ok != 1) {
		std::fprintf(stderr, "%s: FAILED: %" PRIu64 " of %" PRIu64 " messages counted\n",
		             name, t.count, messages);
		return 1;
	}
	bench_result(name, "msgs_per_s", (double)messages / bench_secs(t0, t.t1), "1/s");
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t messages = bench_arg_u64(argc, argv, 1, 10000000, seq_mask);
	uint64_t window = bench_arg_u64(argc, argv, 2, 65536, UINT32_MAX);
	if (messages < 4 || window < 2)
		bench_fail("counting: need at least 4 messages and a window of at least 2");
	int rc = 0;
	rc |= count("counting_1to1", 1, messages, window);
	rc |= count("counting_4to1", 4, messages, window);
	return rc;
}
