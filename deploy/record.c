#include "deploy/record.h"

#include "deploy/host.h"
#include "deploy/host_sh.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *record_json(const struct record_info *info, const char *host, const char *path,
	long generation, const char *goal, const char *result)
{
	json_t *o = json_object();
	char when[32];
	time_t t = time(NULL);
	char *text;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "generation", json_integer(generation));
	json_object_set_new(o, "goal", json_string(goal));
	json_object_set_new(
		o, "revision", info->revision ? json_string(info->revision) : json_null());
	json_object_set_new(o, "dirty", json_boolean(info->dirty));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "result", json_string(result));
	json_object_set_new(
		o, "deployer", json_string(info->deployer ? info->deployer : "unknown"));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

static pthread_once_t cmds_once = PTHREAD_ONCE_INIT;
static char *history_cmd;

static void make_cmds(void)
{
	const char *args[2] = {"history", "200"};

	history_cmd = host_script(host_sh_record, "record", args, 2);
}

char *record_cmd_write(const char *pkg)
{
	const char *arg = "write";

	return host_cmd_root(pkg, host_sh_record, "record", &arg, 1);
}

const char *record_cmd_history(void)
{
	pthread_once(&cmds_once, make_cmds);
	return history_cmd;
}
