// echo_server.cpp: the CAF peer of bench/echo_server.c: a TCP echo server, one broker per
// connection.
//
// Usage: echo_server [--port N] [--bind ADDR]   (defaults 0, any free port, and 127.0.0.1)
// Build: c++ -O2 -std=c++17 -o echo_server echo_server.cpp -lcaf_io -lcaf_core -pthread
//
// Prints "PORT <n>" on stdout once it listens, then echoes every byte each connection sends
// back to it, in order, until the peer closes, for any number of connections, until SIGTERM or
// SIGINT: then the server broker exits, its connection brokers with it (they are linked to
// it), the actor system shuts down and the program exits 0. Bad arguments: a message on stderr
// and exit 2; a port it cannot listen on: exit 1.
//
// CAF 0.17's network API, caf::io brokers, as its manual and broker examples present them: a server
// broker owns the doorman (the listening socket) and, on each new_connection_msg, forks a broker
// that owns that connection's scribe. The connection broker asks for whatever has arrived
// (receive_policy::at_most, up to 64 KiB a read, as bench/echo_epoll.c reads), copies each
// new_data_msg into its write buffer and flushes it; the multiplexer writes it when the socket
// takes it. That buffer has no bound (0.17 brokers leave flow control to the program, through
// ack_writes and halting reads): a peer that sends without reading would grow it, which the
// benchmark's client, reading each response before its next request, never does. CAF's defaults
// throughout, which means one I/O thread: 0.17 runs every broker on the middleman's multiplexer
// thread (one epoll loop), not on the scheduler's threads, so the echoing itself is
// single-threaded, as in echo_epoll.c, whatever the CPU count. The doorman is opened with
// add_tcp_doorman(port, address, reuse_addr = true) rather than through middleman::spawn_server,
// which listens on every interface and offers no address; the server broker opens it when main
// asks, so main learns the port or the error. CAF does the rest of what echo_epoll.c does by hand
// (a SOMAXCONN backlog, TCP_NODELAY on every accepted connection) but for the descriptor limit:
// main raises the soft RLIMIT_NOFILE to the hard limit.
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/resource.h>

using namespace caf;
using namespace caf::io;

using listen_atom = atom_constant<atom("listen")>;

static constexpr size_t read_max = 64 * 1024;

behavior connection(broker *self, connection_handle hdl)
{
	self->configure_read(hdl, receive_policy::at_most(read_max));
	return {
	    [=](const new_data_msg &msg) {
		    self->write(msg.handle, msg.buf.size(), msg.buf.data());
		    self->flush(msg.handle);
	    },
	    [=](const connection_closed_msg &) { self->quit(); },
	};
}

behavior server(broker *self)
{
	return {
	    [=](listen_atom, uint16_t port, const std::string &addr) -> result<uint16_t> {
		    auto res = self->add_tcp_doorman(port, addr.c_str(), true);
		    if (!res)
			    return std::move(res.error());
		    return res->second;
	    },
	    [=](const new_connection_msg &msg) {
		    auto worker = self->fork(connection, msg.handle);
		    self->link_to(worker);
	    },
	};
}

[[noreturn]] static void usage(const char *what, const char *arg)
{
	std::fprintf(stderr, "echo_server: %s'%s'\nusage: echo_server [--port N] [--bind ADDR]\n",
	             what, arg);
	std::exit(2);
}

int main(int argc, char **argv)
{
	uint16_t port = 0;
	std::string bind = "127.0.0.1";
	for (int i = 1; i < argc; i++) {
		bool has_value = i + 1 < argc;
		if (std::strcmp(argv[i], "--port") == 0 && has_value) {
			char *end = nullptr;
			errno = 0;
			long v = std::strtol(argv[++i], &end, 10);
			if (errno != 0 || end == argv[i] || *end != '\0' || v < 0 || v > 65535)
				usage("--port must be in [0, 65535], got ", argv[i]);
			port = static_cast<uint16_t>(v);
		} else if (std::strcmp(argv[i], "--bind") == 0 && has_value) {
			unsigned char addr[sizeof(struct in6_addr)];
			bind = argv[++i];
			if (inet_pton(AF_INET, argv[i], addr) != 1 &&
			    inet_pton(AF_INET6, argv[i], addr) != 1)
				usage("--bind must be a numeric IP address, got ", argv[i]);
		} else if (std::strcmp(argv[i], "--port") == 0 ||
		           std::strcmp(argv[i], "--bind") == 0) {
			usage("missing value for ", argv[i]);
		} else {
			usage("unexpected argument ", argv[i]);
		}
	}
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	// Block the stop signals before CAF starts its threads, which inherit the mask, so that
	// only main's sigwait takes them.
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, nullptr);

	actor_system_config cfg;
	cfg.load<io::middleman>();
	actor_system sys{cfg};
	auto srv = sys.middleman().spawn_broker(server);
	bool listening = false;
	{
		scoped_actor self{sys};
		self->request(srv, infinite, listen_atom::value, port, bind)
		    .receive(
		        [&](uint16_t bound) {
			        std::printf("PORT %u\n", static_cast<unsigned>(bound));
			        std::fflush(stdout);
			        listening = true;
		        },
		        [&](const error &err) {
			        std::fprintf(stderr, "echo_server: cannot listen on %s:%u: %s\n",
			                     bind.c_str(), static_cast<unsigned>(port),
			                     sys.render(err).c_str());
		        });
	}
	if (listening) {
		int sig = 0;
		sigwait(&stop, &sig);
	}
	anon_send_exit(srv, exit_reason::user_shutdown);
	return listening ? 0 : 1;
}
