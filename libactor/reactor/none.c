/* reactor_none.c: stands in for the io_uring backend in builds without liburing. */
#include "config.h"

#include "core/internal.h"
#include "reactor/reactor.h"

const struct actor__reactor_ops *const actor__reactor_uring = NULL;
