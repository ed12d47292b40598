/* config_none.c: stands in for config.c when configure found no inih: --config is refused. */
#include <stdio.h>
#include <stdlib.h>

#include "options.h"

const bool chat_config_built = false;

void chat_config_read(struct chat_options *o, const char *path)
{
	(void)o;
	fprintf(stderr,
	        "chat-server: --config %s: this chat-server was built without configuration "
	        "files (configure found no inih: install libinih-dev, then configure again)\n",
	        path);
	exit(2);
}
