#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die_oom(size_t n)
{
	fprintf(stderr, "constel: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die_oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		die_oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		die_oom(n);
	return q;
}

void xgrow(void **p, size_t *alloc, size_t need, size_t size)
{
	size_t n;

	if (need <= *alloc)
		return;
	n = *alloc ? *alloc : 8;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			die_oom(SIZE_MAX);
		n *= 2;
	}
	if (n > SIZE_MAX / size)
		die_oom(SIZE_MAX);
	*p = xrealloc(*p, n * size);
	*alloc = n;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p;

	/* as strndup: at most n bytes, never past the end of s */
	n = strnlen(s, n);
	p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	char *p;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		die_oom(0);
	p = xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

static _Thread_local char error_slot[1024];

/* Formatted aside first: the arguments may include error_last() itself. */
__attribute__((format(printf, 1, 0))) static void error_vset(const char *fmt, va_list ap)
{
	char msg[sizeof(error_slot)];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	memcpy(error_slot, msg, sizeof(msg));
}

int error_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(fmt, ap);
	va_end(ap);
	return CONSTEL_ERROR;
}

int error_setc(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(fmt, ap);
	va_end(ap);
	return code;
}

int error_prefix(int code, const char *fmt, ...)
{
	char prefix[sizeof(error_slot)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	return error_setc(code, "%s: %s", prefix, error_last());
}

const char *error_last(void)
{
	return error_slot[0] ? error_slot : "unknown error";
}

void error_clear(void)
{
	error_slot[0] = '\0';
}

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
	b->truncated = false;
}

void buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->max && len > b->max - b->len) {
		len = b->max - b->len;
		b->truncated = true;
	}
	xgrow((void **)&b->data, &b->alloc, b->len + len + 1, 1);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_add_json_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	buf_add(b, "\"", 1);
	for (;;) {
		size_t run = 0;
		unsigned char c;
		char esc[6] = {'\\', 'u', '0', '0', 0, 0};

		while ((c = (unsigned char)s[run]) >= 0x20 && c != '"' && c != '\\')
			run++;
		buf_add(b, s, run);
		if (!c)
			break;
		s += run + 1;
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			buf_add(b, esc, 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			buf_add(b, esc, 6);
		}
	}
	buf_add(b, "\"", 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_adds(b, s);
	free(s);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->truncated = false;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");

	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->truncated = false;
	return p;
}

void buf_release(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

const char *buf_tail_lines(const struct buf *b, int lines)
{
	size_t i;

	if (!b->data)
		return "";
	i = b->len;
	/* a final newline ends the last line; it does not start a new one */
	if (i && b->data[i - 1] == '\n')
		i--;
	while (i > 0) {
		if (b->data[i - 1] == '\n' && --lines <= 0)
			break;
		i--;
	}
	return b->data + i;
}

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(8) char data[];
};

#define ARENA_BLOCK (64u << 10)

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->head;
	void *mem;

	n = (n + 7) & ~(size_t)7;
	if (!b || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;

		if (size > SIZE_MAX - sizeof(*b))
			die_oom(SIZE_MAX);
		b = xmalloc(sizeof(*b) + size);
		b->used = 0;
		b->size = size;
		/* a large allocation goes behind the current block: its room stays usable */
		if (a->head && size > ARENA_BLOCK) {
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	mem = b->data + b->used;
	b->used += n;
	return mem;
}

char *arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(arena_alloc(a, n), s, n);
}

void arena_release(struct arena *a)
{
	while (a->head) {
		struct arena_block *next = a->head->next;

		free(a->head);
		a->head = next;
	}
}

void strvec_init(struct strvec *sv)
{
	sv->v = NULL;
	sv->nr = 0;
	sv->alloc = 0;
}

void strvec_push_nodup(struct strvec *sv, char *s)
{
	xgrow((void **)&sv->v, &sv->alloc, sv->nr + 2, sizeof(*sv->v));
	sv->v[sv->nr++] = s;
	sv->v[sv->nr] = NULL;
}

void strvec_push(struct strvec *sv, const char *s)
{
	strvec_push_nodup(sv, xstrdup(s));
}

void strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strvec_push_nodup(sv, xvasprintf(fmt, ap));
	va_end(ap);
}

bool strvec_contains(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->nr; i++)
		if (!strcmp(sv->v[i], s))
			return true;
	return false;
}

void strvec_release(struct strvec *sv)
{
	for (size_t i = 0; i < sv->nr; i++)
		free(sv->v[i]);
	free(sv->v);
	strvec_init(sv);
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row;
	size_t res;

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	row = xmalloc((lb + 1) * sizeof(*row));
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	res = row[lb];
	free(row);
	return res;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *shell_quote(const char *s)
{
	struct buf b = BUF_INIT(0);

	buf_adds(&b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(&b, "'\\''");
		else
			buf_add(&b, s, 1);
	}
	buf_adds(&b, "'");
	return buf_detach(&b);
}

size_t utf8_valid_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min, cp;

	if (!n)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void buf_add_sanitized(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		const unsigned char *run = p;
		size_t l;

		/* the longest run that passes as it is */
		while (p < end && (l = utf8_valid_len(p, (size_t)(end - p))) &&
			(l > 1 || *p == '\n' || *p == '\t' || (*p >= 0x20 && *p != 0x7f)))
			p += l;
		buf_add(b, run, (size_t)(p - run));
		if (p < end) {
			buf_printf(b, "\\x%02x", *p);
			p++;
		}
	}
}

char *text_sanitize(const char *s)
{
	struct buf b = BUF_INIT(0);

	if (!s)
		return NULL;
	buf_add_sanitized(&b, s, strlen(s));
	return buf_detach(&b);
}

char *buf_tail_one_line(const struct buf *b, int lines)
{
	char *s = xstrdup(buf_tail_lines(b, lines)), *w = s;

	for (char *r = s; *r; r++) {
		if (*r == '\n' || *r == '\r' || *r == '\t') {
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
		} else {
			*w++ = *r;
		}
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
	return s;
}

/* $XDG_X/constel, else $HOME/FALLBACK/constel, else the password database's home. */
static char *user_dir(const char *xdg_var, const char *fallback, const char *what, const char *hint)
{
	const char *xdg = getenv(xdg_var), *home = getenv("HOME");
	struct passwd *pw;

	if (xdg && xdg[0] == '/')
		return xasprintf("%s/constel", xdg);
	if (home && home[0] == '/')
		return xasprintf("%s/%s/constel", home, fallback);
	pw = getpwuid(geteuid());
	if (pw && pw->pw_dir && pw->pw_dir[0] == '/')
		return xasprintf("%s/%s/constel", pw->pw_dir, fallback);
	error_set("no home directory for %s: set HOME or %s%s", what, xdg_var, hint);
	return NULL;
}

char *state_dir(void)
{
	return user_dir("XDG_STATE_HOME", ".local/state", "the run logs", ", or pass --log-dir");
}

char *cache_dir(void)
{
	return user_dir("XDG_CACHE_HOME", ".cache", "the evaluation cache", "");
}

int dir_make_private(const char *path)
{
	char *p = xstrdup(path);
	struct stat st;
	int ret = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			ret = error_set("cannot create '%s': %s", p, strerror(errno));
		*s = '/';
		if (ret < 0)
			goto out;
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST) {
		ret = error_set("cannot create '%s': %s", p, strerror(errno));
		goto out;
	}
	if (lstat(p, &st) < 0) {
		ret = error_set("cannot use '%s': %s", p, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		ret = error_set("'%s' is not a directory (a symlink?); refusing to write in it", p);
	} else if (st.st_uid != geteuid()) {
		ret = error_set(
			"'%s' belongs to uid %ld, not to this user; refusing to write in it", p,
			(long)st.st_uid);
	} else if ((st.st_mode & 022) && chmod(p, st.st_mode & 0700) < 0) {
		ret = error_set("'%s' is writable by others and cannot be made private: %s", p,
			strerror(errno));
	}
out:
	free(p);
	return ret;
}

FILE *file_open_private(const char *path, bool append)
{
	int fd = open(path,
		O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0600);
	FILE *f;

	if (fd < 0) {
		error_set("cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	f = fdopen(fd, append ? "a" : "w");
	if (!f) {
		error_set("cannot open '%s': %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

void timespec_in_ms(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
