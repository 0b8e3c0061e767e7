/* SPDX-License-Identifier: MIT */
/*
 * The CT test fixture shared by test_ct and test_ct_service: the
 * certificate factory (a root, an intermediate, two log keys), two
 * processes of the test log (selftests/service/ct/ct_log/ct_log.py) on
 * loopback, and the factory again to issue certificates with SCTs from
 * those logs.  Set up once per binary, on first use (NEED_ENV); the logs
 * die with the test, and the directory is removed at exit.
 */
#ifndef HM_CT_ENV_H
#define HM_CT_ENV_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/ct/ct.h"
#include "service/ct/ct_client.h"
#include "hm_test.h"

enum { VALID, UNKNOWN_LOG, BAD_SCT, NO_SCT, N_CHAINS };
static const char *const chain_names[N_CHAINS] = { "valid", "unknown_log", "bad_sct", "no_sct" };

static struct {
	bool tried, ready;
	char dir[64], tools[512], url_a[64], url_b[64];
	pid_t pid[2];
	char *chain[N_CHAINS];
	size_t chain_len[N_CHAINS];
	uint64_t sct_ms; /* log A's SCT timestamp on the valid certificate */
} env;

static inline const char *python(void)
{
	const char *p = getenv("HM_PYTHON");

	return p ? p : "/usr/bin/python3"; /* Debian's, with python3-cryptography */
}

static inline int run(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Start log `name` (its key is env.dir/NAME.key.pem); it dies with us
 * (PDEATHSIG) even if we crash. */
static inline pid_t start_log(const char *name, char *url, size_t cap)
{
	char script[600], key[128], roots[128], port_file[128];
	pid_t pid;

	snprintf(script, sizeof(script), "%s/ct_log.py", env.tools);
	snprintf(key, sizeof(key), "%s/%s.key.pem", env.dir, name);
	snprintf(roots, sizeof(roots), "%s/root.pem", env.dir);
	snprintf(port_file, sizeof(port_file), "%s/%s.port", env.dir, name);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execl(python(), python(), script, "--key", key, "--roots", roots, "--port-file", port_file,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) { /* up to 10 s */
		FILE *f = fopen(port_file, "r");
		int port, n = 0;

		if (f) {
			n = fscanf(f, "%d", &port);
			fclose(f);
		}
		if (n == 1) {
			snprintf(url, cap, "http://127.0.0.1:%d", port);
			return pid;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(50 * 1000);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return -1;
}

static inline void stop_logs(void)
{
	for (int i = 0; i < 2; i++)
		if (env.pid[i] > 0) {
			kill(env.pid[i], SIGTERM);
			waitpid(env.pid[i], NULL, 0);
		}
	if (env.dir[0]) {
		char *rm[] = { "/bin/rm", "-rf", env.dir, NULL };

		run(rm);
	}
}

static inline char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n >= 0 && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = 0;
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Where the log and factory scripts are: $HM_CT_TOOLS, or selftests/service/ct/ct_log
 * from the repository root or from build/{,san/}tests. */
static inline bool find_tools(void)
{
	static const char *const cands[] = { "selftests/service/ct/ct_log", "../../selftests/service/ct/ct_log",
					     "../../../selftests/service/ct/ct_log" };
	const char *e = getenv("HM_CT_TOOLS");
	char exe[256], path[700];
	ssize_t n;

	if (e) {
		snprintf(env.tools, sizeof(env.tools), "%s", e);
		return true;
	}
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		snprintf(path, sizeof(path), "%s/ct_log.py", cands[i]);
		if (access(path, R_OK) == 0) {
			snprintf(env.tools, sizeof(env.tools), "%s", cands[i]);
			return true;
		}
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		for (size_t i = 1; i < sizeof(cands) / sizeof(cands[0]); i++) {
			char *slash = strrchr(exe, '/');

			if (!slash)
				break;
			*slash = 0;
			snprintf(path, sizeof(path), "%s/%s/ct_log.py", exe, cands[i]);
			if (access(path, R_OK) == 0) {
				snprintf(env.tools, sizeof(env.tools), "%s/%s", exe, cands[i]);
				return true;
			}
		}
	}
	return false;
}

/* The fixture, once: false (with a failure reported) if it cannot be had. */
static inline bool ct_env_setup(void)
{
	char factory[600], path[128];

	if (env.tried)
		return env.ready;
	env.tried = true;
	if (!find_tools()) {
		HM_FAIL("cannot find selftests/service/ct/ct_log (run from the repository root or set HM_CT_TOOLS)");
		return false;
	}
	snprintf(env.dir, sizeof(env.dir), "/tmp/hm-%.20s-%d-XXXXXX", program_invocation_short_name,
		 (int)getpid());
	if (!mkdtemp(env.dir)) {
		env.dir[0] = 0;
		HM_FAIL("mkdtemp: %s", strerror(errno));
		return false;
	}
	atexit(stop_logs);
	snprintf(factory, sizeof(factory), "%s/certfactory.py", env.tools);
	char *init[] = { (char *)python(), factory, "init", env.dir, NULL };
	if (run(init) != 0) {
		HM_FAIL("certfactory.py init failed (is python3-cryptography installed?)");
		return false;
	}
	env.pid[0] = start_log("log_a", env.url_a, sizeof(env.url_a));
	env.pid[1] = start_log("log_b", env.url_b, sizeof(env.url_b));
	if (env.pid[0] <= 0 || env.pid[1] <= 0) {
		HM_FAIL("the test logs did not start");
		return false;
	}
	char *issue[] = { (char *)python(), factory, "issue", env.dir, "--log-a", env.url_a,
			  "--log-b", env.url_b, NULL };
	if (run(issue) != 0) {
		HM_FAIL("certfactory.py issue failed");
		return false;
	}
	for (int i = 0; i < N_CHAINS; i++) {
		snprintf(path, sizeof(path), "%s/%s.chain.pem", env.dir, chain_names[i]);
		if (!(env.chain[i] = slurp(path, &env.chain_len[i]))) {
			HM_FAIL("no %s", path);
			return false;
		}
	}
	{
		char *json, *ts;
		size_t len;

		snprintf(path, sizeof(path), "%s/valid.sct.json", env.dir);
		json = slurp(path, &len);
		ts = json ? strstr(json, "\"timestamp\": ") : NULL;
		if (ts)
			env.sct_ms = strtoull(ts + 13, NULL, 10);
		free(json);
	}
	env.ready = true;
	return true;
}

#define NEED_ENV() do { if (!ct_env_setup()) return; } while (0)

/* Just after the SCTs were issued (they are in ms, T in s). */
static inline uint64_t agreed_now(void)
{
	return (uint64_t)time(NULL) + 2;
}

/* A verdict checker trusting the factory's root and log A (and log B when
 * with_log_b). */
static inline struct hm_ct *new_ct(bool with_log_b)
{
	struct hm_ct *ct = hm_ct_new();
	char path[128], err[256];

	if (!ct)
		return NULL;
	snprintf(path, sizeof(path), "%s/root.pem", env.dir);
	if (!ASSERT_OK(hm_ct_add_trust_file(ct, path, err, sizeof(err)), err))
		goto fail;
	snprintf(path, sizeof(path), "%s/log_a.pub.pem", env.dir);
	if (!ASSERT_OK(hm_ct_add_log_file(ct, "a", path, NULL, err, sizeof(err)), err))
		goto fail;
	if (with_log_b) {
		snprintf(path, sizeof(path), "%s/log_b.pub.pem", env.dir);
		if (!ASSERT_OK(hm_ct_add_log_file(ct, "b", path, NULL, err, sizeof(err)), err))
			goto fail;
	}
	return ct;
fail:
	hm_ct_free(ct);
	return NULL;
}

/* Evidence for chain i from the log at url whose id is id, the consistency
 * proof from tree size `from`. */
static inline bool fetch_from(const char *url, const uint8_t id[HM_CT_LOG_ID_LEN], int i,
			      uint64_t from, struct hm_ct_evidence *ev)
{
	struct hm_ct_client *c = hm_ct_client_new(url, 5000);
	hm_merkle_hash lh;
	char err[256] = "";
	bool ok;

	ok = ASSERT_TRUE(c != NULL, "client") &&
	     ASSERT_OK(hm_ct_leaf_hash(env.chain[i], env.chain_len[i], id, lh, err, sizeof(err)), err) &&
	     ASSERT_OK(hm_ct_fetch_evidence(c, id, lh, from, ev, err, sizeof(err)), err);
	hm_ct_client_free(c);
	return ok;
}

#endif
