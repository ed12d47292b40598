/* none.c: the broker's calls when the library is built without libnats (configure
 * --with-nats): each says -ENOSYS, and actor_broker_header finds nothing. */
#include "config.h"

#include <errno.h>

#include "actor.h"

int actor_broker_connect(actor_system_t *sys, const actor_broker_opts_t *opts)
{
	(void)sys, (void)opts;
	return -ENOSYS;
}

int actor_broker_close(actor_system_t *sys, uint32_t timeout_ms)
{
	(void)sys, (void)timeout_ms;
	return -ENOSYS;
}

int actor_broker_watch(actor_ctx_t *ctx, int on)
{
	(void)ctx, (void)on;
	return -ENOSYS;
}

const char *actor_broker_header(const actor_broker_msg_t *m, const char *name)
{
	(void)m, (void)name;
	return NULL;
}

int actor_broker_subscribe(actor_ctx_t *ctx, const char *subject,
                           const actor_broker_sub_opts_t *opts, actor_broker_sub_t *out)
{
	(void)ctx, (void)subject, (void)opts, (void)out;
	return -ENOSYS;
}

int actor_broker_unsubscribe(actor_ctx_t *ctx, actor_broker_sub_t sub)
{
	(void)ctx, (void)sub;
	return -ENOSYS;
}

int actor_broker_publish(actor_ctx_t *ctx, const actor_broker_pub_t *pub)
{
	(void)ctx, (void)pub;
	return -ENOSYS;
}

int actor_broker_request(actor_ctx_t *ctx, const actor_broker_pub_t *pub,
                         const actor_request_opts_t *opts, actor_request_t *out)
{
	(void)ctx, (void)pub, (void)opts, (void)out;
	return -ENOSYS;
}

int actor_broker_js_publish(actor_ctx_t *ctx, const actor_broker_pub_t *pub,
                            const actor_request_opts_t *opts, actor_request_t *out)
{
	(void)ctx, (void)pub, (void)opts, (void)out;
	return -ENOSYS;
}

int actor_broker_stream_add(actor_system_t *sys, const char *name, const char *subjects,
                            unsigned replicas, uint32_t dedup_window_ms, uint64_t max_age_ms)
{
	(void)sys, (void)name, (void)subjects, (void)replicas, (void)dedup_window_ms;
	(void)max_age_ms;
	return -ENOSYS;
}

int actor_broker_kv_add(actor_system_t *sys, const char *bucket, unsigned replicas)
{
	(void)sys, (void)bucket, (void)replicas;
	return -ENOSYS;
}

int actor_broker_kv_create(actor_ctx_t *ctx, const char *bucket, const char *key, const void *value,
                           size_t len, const actor_request_opts_t *opts, actor_request_t *out)
{
	(void)ctx, (void)bucket, (void)key, (void)value, (void)len, (void)opts, (void)out;
	return -ENOSYS;
}

int actor_broker_kv_delete(actor_ctx_t *ctx, const char *bucket, const char *key,
                           const actor_request_opts_t *opts, actor_request_t *out)
{
	(void)ctx, (void)bucket, (void)key, (void)opts, (void)out;
	return -ENOSYS;
}

int actor_broker_consume(actor_ctx_t *ctx, const actor_broker_consumer_opts_t *copts,
                         const actor_request_opts_t *opts, actor_broker_sub_t *sub,
                         actor_request_t *out)
{
	(void)ctx, (void)copts, (void)opts, (void)sub, (void)out;
	return -ENOSYS;
}

int actor_broker_consume_ordered(actor_ctx_t *ctx, const actor_broker_ordered_opts_t *copts,
                                 const actor_request_opts_t *opts, actor_broker_sub_t *sub,
                                 actor_request_t *out)
{
	(void)ctx, (void)copts, (void)opts, (void)sub, (void)out;
	return -ENOSYS;
}

int actor_broker_ack(actor_ctx_t *ctx, const actor_broker_msg_t *m, int kind)
{
	(void)ctx, (void)m, (void)kind;
	return -ENOSYS;
}
