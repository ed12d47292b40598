/* fake_reactor.h: a scripted reactor backend, so that the net service's state machine is tested
 * without the kernel deciding when bytes arrive or leave (as tests/chat/bus.c does for the chat
 * protocol). The test thread queues steps; the worker runs them inside the backend's `wait`,
 * on its own thread, exactly where a real backend would report events:
 *   - fake_accept: a listening watcher accepts a new connection (a real, unconnected socket,
 *     so that the service's socket calls work on it);
 *   - fake_read: bytes (or the end, or an error) arrive on a descriptor, whatever its watcher
 *     wants at the time: a completion backend's receive in flight when a pause was applied
 *     reports just so;
 *   - fake_write_error, fake_drain: what a descriptor's writes do. Writes complete at once,
 *     into the descriptor's sink, unless fake_block made the descriptor hold them; then
 *     fake_drain lets some through;
 *   - fake_hold / fake_release: an operation in flight holds the watcher, so a close is let go
 *     only at fake_release, as io_uring does after a cancellation.
 * The test reads what each descriptor's watcher wants, what it sent and whether it was let go.
 */
#ifndef TESTS_FAKE_REACTOR_H
#define TESTS_FAKE_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "reactor/reactor.h"

extern const struct actor__reactor_ops fake_reactor_ops;

/* Installs the fake as every new system's backend (a test process's own setting). */
void fake_install(void);

/* Queues a step and waits until the worker has run it; returns what it gave (fake_accept: the
 * new descriptor), or a negative errno if the descriptor is not watched. */
int fake_accept(int listen_fd);
int fake_accept_error(int listen_fd, int err);
int fake_read(int fd, const void *data, size_t len);
int fake_read_end(int fd, int err); /* 0: the peer's end */
int fake_write_error(int fd, int err);
int fake_block(int fd);             /* writes wait for fake_drain */
int fake_drain(int fd, size_t max); /* lets up to `max` bytes through; returns how many */
int fake_hold(int fd);
int fake_release(int fd);

/* What the descriptor's watcher wants now (-1: never seen). */
int fake_want(int fd);
/* Waits (bounded) until fake_want(fd) == want; false if it did not happen. */
bool fake_wait_want(int fd, int want);
/* Whether the reactor let go of the descriptor's watcher (on_closed ran). */
bool fake_let_go(int fd);
bool fake_wait_let_go(int fd);
/* Copies what was sent on `fd` (up to cap bytes); returns the total sent. */
size_t fake_sent(int fd, void *buf, size_t cap);
/* The fd of the first listening watcher (wanting or having wanted WATCH_ACCEPT), or -1. */
int fake_listener(void);

#endif /* TESTS_FAKE_REACTOR_H */
