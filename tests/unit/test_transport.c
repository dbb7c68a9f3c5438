/*
 * Unit tests of transport/ that need no network: ssh config resolution,
 * the parsing of the host's missing-paths answer, path and ProxyJump checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "transport/internal.h"
#include "transport/transport.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/constel-ut-transport.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	/* ~ and the default files resolve here, not in the real home */
	setenv("HOME", tmpdir, 1);
	unsetenv("SSH_AUTH_SOCK");
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int rc;

	(void)state;
	rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

static char *write_config(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_transport_config_resolves_host_block(void **state)
{
	char *cfg = write_config("c1", "# comment\n"
				       "Host other\n"
				       "  HostName wrong.example\n"
				       "Host web* !webx\n"
				       "  HostName %h.fleet.example\n"
				       "  Port=2222\n"
				       "  User deploy\n"
				       "  IdentityFile ~/.ssh/id_%h\n"
				       "  IdentityFile \"/keys/with space\"\n"
				       "  UserKnownHostsFile ~/kh /other/kh\n"
				       "  StrictHostKeyChecking accept-new\n"
				       "  ConnectTimeout 7\n"
				       "  ServerAliveInterval 4\n"
				       "  ProxyJump admin@bastion:2200,second\n"
				       "Host *\n"
				       "  User ignored\n"
				       "  Port 1\n");
	struct ssh_target t = {.name = "web1", .ssh_config = cfg};
	struct ssh_resolved r;
	char *want;

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.hostname, "web1.fleet.example");
	assert_int_equal(r.port, 2222);
	assert_string_equal(r.user, "deploy");
	assert_int_equal(r.identities.nr, 2);
	want = xasprintf("%s/.ssh/id_web1.fleet.example", tmpdir);
	assert_string_equal(r.identities.v[0], want);
	free(want);
	assert_string_equal(r.identities.v[1], "/keys/with space");
	want = xasprintf("%s/kh", tmpdir);
	assert_string_equal(r.known_hosts, want);
	free(want);
	assert_int_equal(r.hostkey_policy, SSH_HOSTKEY_ACCEPT_NEW);
	assert_int_equal(r.connect_timeout, 7);
	assert_int_equal(r.alive_interval, 4);
	/* no ServerAliveCountMax: OpenSSH's 3 */
	assert_int_equal(r.op_timeout, 12);
	assert_string_equal(r.proxy_jump, "admin@bastion:2200");
	assert_null(r.proxy_command);
	ssh_resolved_release(&r);
	free(cfg);
}

static void test_transport_config_negated_pattern_excludes(void **state)
{
	char *cfg = write_config("c2", "Host web* !webx\n  Port 2222\n  User deploy\n");
	struct ssh_target t = {.name = "webx", .ssh_config = cfg};
	struct ssh_resolved r;

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.hostname, "webx");
	assert_int_equal(r.port, 22);
	assert_string_equal(r.user, "root");
	assert_int_equal(r.hostkey_policy, SSH_HOSTKEY_STRICT);
	ssh_resolved_release(&r);
	free(cfg);
}

static void test_transport_config_explicit_target_overrides(void **state)
{
	char *cfg = write_config("c3", "Host db\n  HostName db.internal\n  Port 2022\n"
				       "  User admin\n  ConnectTimeout 30\n"
				       "  ServerAliveCountMax 5\n");
	struct ssh_target t = {.name = "db",
		.address = "10.0.0.5",
		.user = "root",
		.port = 22,
		.ssh_config = cfg,
		.connect_timeout = 3,
		.op_timeout = 9};
	struct ssh_resolved r;

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.hostname, "10.0.0.5");
	assert_int_equal(r.port, 22);
	assert_string_equal(r.user, "root");
	assert_int_equal(r.connect_timeout, 3);
	assert_int_equal(r.op_timeout, 9);
	/* no ServerAliveInterval: a third of the operation timeout */
	assert_int_equal(r.alive_interval, 3);
	ssh_resolved_release(&r);
	free(cfg);
}

static void test_transport_config_matches_address_too(void **state)
{
	char *cfg = write_config("c4", "Host *.ts.net\n  User tailscale\n"
				       "Match host galactica\n  Port 2200\n"
				       "Match exec true\n  Port 1\n");
	struct ssh_target t = {
		.name = "galactica", .address = "galactica.bat-boa.ts.net", .ssh_config = cfg};
	struct ssh_resolved r;

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.user, "tailscale");
	assert_int_equal(r.port, 2200);
	assert_string_equal(r.hostname, "galactica.bat-boa.ts.net");
	ssh_resolved_release(&r);
	free(cfg);
}

static void test_transport_config_follows_include(void **state)
{
	char *inc = write_config("inc.conf", "Host alpha\n  HostName 10.1.2.3\n"
					     "  StrictHostKeyChecking no\n"
					     "  UserKnownHostsFile none\n  ProxyJump none\n");
	char *cfg = write_config("c5", "Include inc.conf\nHost alpha\n  HostName late\n");
	struct ssh_target t = {.name = "alpha", .ssh_config = cfg};
	struct ssh_resolved r;

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.hostname, "10.1.2.3");
	assert_int_equal(r.hostkey_policy, SSH_HOSTKEY_NO);
	assert_string_equal(r.known_hosts, "/dev/null");
	assert_null(r.proxy_jump);
	ssh_resolved_release(&r);
	free(inc);
	free(cfg);
}

static void test_transport_config_defaults_without_file(void **state)
{
	char *missing = xasprintf("%s/.ssh/config", tmpdir);
	struct ssh_target t = {.name = "plain"};
	struct ssh_resolved r;
	char *want;

	(void)state;
	assert_int_equal(access(missing, F_OK), -1);
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.hostname, "plain");
	assert_string_equal(r.user, "root");
	assert_int_equal(r.port, 22);
	assert_int_equal(r.connect_timeout, 10);
	assert_int_equal(r.op_timeout, 60);
	assert_null(r.identity_agent);
	assert_int_equal(r.identities.nr, 3);
	want = xasprintf("%s/.ssh/id_ed25519", tmpdir);
	assert_string_equal(r.identities.v[0], want);
	free(want);
	want = xasprintf("%s/.ssh/known_hosts", tmpdir);
	assert_string_equal(r.known_hosts, want);
	free(want);
	ssh_resolved_release(&r);
	free(missing);
}

static void test_transport_config_agent_from_environment(void **state)
{
	char *cfg = write_config("c6", "Host solo\n  IdentitiesOnly yes\n"
				       "Host other\n  IdentityAgent none\n");
	struct ssh_target t = {.name = "solo", .ssh_config = cfg};
	struct ssh_resolved r;

	(void)state;
	setenv("SSH_AUTH_SOCK", "/tmp/agent.sock", 1);
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_string_equal(r.identity_agent, "/tmp/agent.sock");
	assert_true(r.identities_only);
	ssh_resolved_release(&r);
	t.name = "other";
	assert_int_equal(ssh_target_resolve(&r, &t), 0);
	assert_null(r.identity_agent);
	assert_false(r.identities_only);
	ssh_resolved_release(&r);
	unsetenv("SSH_AUTH_SOCK");
	free(cfg);
}

static void test_transport_config_bad_value_names_line(void **state)
{
	char *cfg = write_config("c7", "Host *\n\n  Port 99999\n");
	struct ssh_target t = {.name = "x", .ssh_config = cfg};
	struct ssh_resolved r;
	char *want = xasprintf("%s:3: bad Port '99999'", cfg);

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), CONSTEL_ERROR);
	assert_string_equal(error_last(), want);
	free(want);
	free(cfg);
}

static void test_transport_config_missing_given_file_fails(void **state)
{
	struct ssh_target t = {.name = "x", .ssh_config = "/nonexistent/ssh_config"};
	struct ssh_resolved r;

	(void)state;
	assert_int_equal(ssh_target_resolve(&r, &t), CONSTEL_ERROR);
	assert_non_null(strstr(error_last(), "'/nonexistent/ssh_config'"));
}

static const char *const closure[] = {
	"/nix/store/aaaa-glibc",
	"/nix/store/bbbb-bash",
	"/nix/store/bbbb-bash-man",
	"/nix/store/cccc-system",
};

static void test_transport_missing_answer_marks_named_paths(void **state)
{
	const char answer[] = "/nix/store/cccc-system\n/nix/store/bbbb-bash\n";
	bool missing[4];

	(void)state;
	assert_int_equal(transport__parse_missing(closure, 4, answer, strlen(answer), missing), 0);
	/* the set is kept in the closure's order, whatever the answer's order */
	assert_false(missing[0]);
	assert_true(missing[1]);
	assert_false(missing[2]); /* a path whose prefix was named is not */
	assert_true(missing[3]);
}

static void test_transport_missing_answer_empty_means_complete(void **state)
{
	bool missing[4] = {true, true, true, true};

	(void)state;
	assert_int_equal(transport__parse_missing(closure, 4, "", 0, missing), 0);
	for (size_t i = 0; i < 4; i++)
		assert_false(missing[i]);
	/* a last line without newline, and blank lines, are fine */
	assert_int_equal(
		transport__parse_missing(closure, 4, "\n/nix/store/aaaa-glibc", 22, missing), 0);
	assert_true(missing[0]);
}

static void test_transport_missing_answer_rejects_strangers(void **state)
{
	const char evil[] = "/nix/store/aaaa-glibc\n/etc/passwd\n";
	const char partial[] = "/nix/store/bbbb-bas\n";
	const char nul[] = "/nix/store/aaaa-glibc\0x\n";
	bool missing[4];

	(void)state;
	assert_int_equal(
		transport__parse_missing(closure, 4, evil, strlen(evil), missing), CONSTEL_ERROR);
	assert_non_null(strstr(error_last(), "line 2"));
	assert_non_null(strstr(error_last(), "'/etc/passwd'"));
	assert_int_equal(transport__parse_missing(closure, 4, partial, strlen(partial), missing),
		CONSTEL_ERROR);
	assert_int_equal(
		transport__parse_missing(closure, 4, nul, sizeof(nul) - 1, missing), CONSTEL_ERROR);
}

static void test_transport_missing_answer_scales(void **state)
{
	enum { N = 5000 };
	char **paths = xcalloc(N, sizeof(*paths));
	bool *missing = xcalloc(N, sizeof(*missing));
	struct buf answer = BUF_INIT(0);

	(void)state;
	for (size_t i = 0; i < N; i++) {
		/* reverse-sorted names: order must come from the list, not from names */
		paths[i] = xasprintf("/nix/store/%08zu-p", N - i);
		if (i % 3 == 0)
			buf_printf(&answer, "%s\n", paths[i]);
	}
	assert_int_equal(transport__parse_missing(
				 (const char *const *)paths, N, answer.data, answer.len, missing),
		0);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(missing[i], i % 3 == 0);
		free(paths[i]);
	}
	free(paths);
	free(missing);
	buf_release(&answer);
}

static void test_transport_valid_path_refuses_shell_meta(void **state)
{
	(void)state;
	assert_true(transport__valid_path("/nix/store/abc-hello-2.12.1"));
	assert_true(transport__valid_path("/nix/store/abc-foo+bar_1.0?x=y"));
	assert_false(transport__valid_path("/nix/store/abc-x; rm -rf /"));
	assert_false(transport__valid_path("/nix/store/abc-x\nother"));
	assert_false(transport__valid_path("nix/store/abc"));
	assert_false(transport__valid_path("/nix/store/../etc"));
	assert_false(transport__valid_path("/nix/store/$(id)"));
	assert_false(transport__valid_path(""));
}

static void test_transport_jump_spec_parsed(void **state)
{
	char *user, *host;
	int port;

	(void)state;
	assert_int_equal(transport__parse_jump("admin@bastion:2200", &user, &host, &port), 0);
	assert_string_equal(user, "admin");
	assert_string_equal(host, "bastion");
	assert_int_equal(port, 2200);
	free(user);
	free(host);
	assert_int_equal(transport__parse_jump("bastion", &user, &host, &port), 0);
	assert_null(user);
	assert_string_equal(host, "bastion");
	assert_int_equal(port, 0);
	free(host);
	assert_int_equal(transport__parse_jump("ssh://[fd00::1]:22", &user, &host, &port), 0);
	assert_string_equal(host, "fd00::1");
	assert_int_equal(port, 22);
	free(host);
	assert_int_equal(transport__parse_jump("u@b:notaport", &user, &host, &port), CONSTEL_ERROR);
	assert_null(user);
	assert_null(host);
}

static void test_transport_exec_result_is_bounded(void **state)
{
	struct ssh_exec_result r;
	char big[1000];

	(void)state;
	memset(big, 'x', sizeof(big));
	ssh_exec_result_init(&r, 100, 10);
	assert_int_equal(r.exit_status, -1);
	assert_null(r.exit_signal);
	buf_add(&r.out, big, sizeof(big));
	buf_add(&r.err, big, sizeof(big));
	assert_int_equal(r.out.len, 100);
	assert_true(r.out.truncated);
	assert_int_equal(r.err.len, 10);
	ssh_exec_result_release(&r);
	assert_null(r.out.data);
	assert_int_equal(r.out.max, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport_config_resolves_host_block),
		cmocka_unit_test(test_transport_config_negated_pattern_excludes),
		cmocka_unit_test(test_transport_config_explicit_target_overrides),
		cmocka_unit_test(test_transport_config_matches_address_too),
		cmocka_unit_test(test_transport_config_follows_include),
		cmocka_unit_test(test_transport_config_defaults_without_file),
		cmocka_unit_test(test_transport_config_agent_from_environment),
		cmocka_unit_test(test_transport_config_bad_value_names_line),
		cmocka_unit_test(test_transport_config_missing_given_file_fails),
		cmocka_unit_test(test_transport_missing_answer_marks_named_paths),
		cmocka_unit_test(test_transport_missing_answer_empty_means_complete),
		cmocka_unit_test(test_transport_missing_answer_rejects_strangers),
		cmocka_unit_test(test_transport_missing_answer_scales),
		cmocka_unit_test(test_transport_valid_path_refuses_shell_meta),
		cmocka_unit_test(test_transport_jump_spec_parsed),
		cmocka_unit_test(test_transport_exec_result_is_bounded),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
