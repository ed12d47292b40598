/* cluster.h: chat-server on several hosts (--cluster): the cluster actor of cluster.c, the
 * one part that talks to the broker. */
#ifndef CHAT_CLUSTER_H
#define CHAT_CLUSTER_H

#include "chat.h"

#define CHAT_NETWORK_MAX 24 /* bytes of a network name: letters, digits, '-', '_' */
#define CHAT_CLUSTER_REPLICAS_DEFAULT                                                              \
	3 /* copies of the stream and bucket: a quorum of three                                    \
	   * servers survives the loss of one */

struct chat_cluster_opts {
	const char *servers; /* "nats://h1:4222,nats://h2:4222" */
	const char *network; /* the same on every host: the stream, bucket and subjects' names */
	unsigned replicas;   /* 1 to 5 */
};

/* From main, before the workers run: connects to the servers, makes the stream and bucket if
 * they are absent, and spawns the cluster actor (srv->cluster). 0, or -errno after saying
 * why on stderr. */
int chat_cluster_start(actor_system_t *sys, struct chat_srv *srv,
                       const struct chat_cluster_opts *o);

#endif /* CHAT_CLUSTER_H */
