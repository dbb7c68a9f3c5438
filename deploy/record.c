#include "deploy/record.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *record_json(const struct record_info *info, const char *host, const char *path,
	long generation, const char *goal)
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
	json_object_set_new(o, "revision", info->revision ? json_string(info->revision) : json_null());
	json_object_set_new(o, "dirty", json_boolean(info->dirty));
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "result", json_string("deployed"));
	json_object_set_new(o, "deployer", json_string(info->deployer ? info->deployer : "unknown"));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

int record_host(struct ssh_conn *conn, const struct record_info *info, const char *host,
	const char *path, long generation, const char *goal)
{
	char *json = record_json(info, host, path, generation, goal);
	char *input = xasprintf("%s\n", json);
	struct ssh_exec_result res;
	int ret;

	ssh_exec_result_init(&res, 4096, 4096);
	ret = ssh_conn_exec(conn,
		"mkdir -p " RECORD_DIR " && cd " RECORD_DIR " && cat > deployment.json.tmp && "
		"cat deployment.json.tmp >> history.jsonl && mv -f deployment.json.tmp "
		"deployment.json",
		input, strlen(input), &res);
	if (ret == 0 && res.exit_status != 0)
		ret = error_set("writing %s/deployment.json on '%s' failed: %s", RECORD_DIR, host,
			buf_tail_lines(&res.err, 1));
	ssh_exec_result_release(&res);
	free(json);
	free(input);
	return ret;
}

const char *record_cmd_history(void)
{
	return "cat " RECORD_DIR "/history.jsonl 2>/dev/null";
}
