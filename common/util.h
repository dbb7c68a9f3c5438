/*
 * common/util.h: the few things every module of constel shares.
 *
 * - The xmalloc family: allocation that cannot fail. Out of memory aborts
 *   with a message, so callers never thread ENOMEM through their code.
 * - The per-thread error slot: a failing function returns a negative code
 *   and leaves a one-line, lowercase message here with error_set(); the
 *   caller that reports the failure reads it with error_last().
 * - struct buf: a growable byte buffer with a hard maximum. Remote output
 *   is untrusted, so a buffer never grows past `max`; what does not fit is
 *   dropped and `truncated` says so.
 * - struct strvec: a NULL-terminated, growable vector of owned strings.
 * - Strict number parsing (no atoi).
 */
#ifndef CONSTEL_UTIL_H
#define CONSTEL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Error codes. 0 is success; everything else is negative. */
enum {
	CONSTEL_ERROR = -1,	 /* generic failure, message in error_last() */
	CONSTEL_ENOTFOUND = -3,	 /* the thing asked for does not exist */
	CONSTEL_ETIMEOUT = -4,	 /* an operation ran out of time */
	CONSTEL_EINTERRUPT = -5, /* stopped because the user asked to */
	CONSTEL_ELIMIT = -6,	 /* a child passed a bound it was given (memory) */
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows *p (holding *alloc elements of `size` bytes) to hold at least `need`. */
void xgrow(void **p, size_t *alloc, size_t need, size_t size);
char *xstrdup(const char *s);
/* Like strndup: at most n bytes of s, stopping at its end. */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Sets this thread's error message; always returns CONSTEL_ERROR. */
int error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like error_set, but returns `code` (for the CONSTEL_E* codes). */
int error_setc(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Puts a prefix before this thread's message ("'alpha': " + message): the
 * callee's words stay, the caller says what it was doing. Returns `code`,
 * so a callee's code passes up unchanged: `return error_prefix(ret, ...)`.
 */
int error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* This thread's last message (borrowed; valid until the next error_set). */
const char *error_last(void);
void error_clear(void);

struct buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t alloc;
	size_t max;	/* hard limit on len; 0 means unbounded */
	bool truncated; /* bytes were dropped because of max */
};

#define BUF_INIT(m)                                                                                \
	{                                                                                          \
		NULL, 0, 0, (m), false                                                             \
	}

void buf_init(struct buf *b, size_t max);
/* Appends up to what `max` allows; sets truncated if anything is dropped. */
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
/* Hands the contents to the caller (never NULL) and resets the buffer. */
char *buf_detach(struct buf *b);
void buf_release(struct buf *b);
/*
 * Appends `s` as a JSON string, quotes included: '"', '\\' and control
 * characters escaped, every other byte as it is (the caller passes UTF-8).
 * For output written in bulk, where building a jansson document per value
 * would cost more than the rest of the command.
 */
void buf_add_json_string(struct buf *b, const char *s);
/*
 * Text from outside (hosts, git notes, nix) made safe for a terminal and a
 * log: newline and tab pass, every other control character, DEL and every
 * byte that is not part of valid UTF-8 is shown as `\xNN`, so no escape
 * sequence reaches the terminal and the result is valid UTF-8.
 * text_sanitize() returns a new string (caller frees; NULL gives NULL).
 */
void buf_add_sanitized(struct buf *b, const char *s, size_t n);
char *text_sanitize(const char *s);
/* The length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
size_t utf8_valid_len(const unsigned char *s, size_t n);
/* The start of the last `lines` lines of the buffer (borrowed). */
const char *buf_tail_lines(const struct buf *b, int lines);
/* Those lines as one line, each run of line breaks and tabs one space (caller frees). */
char *buf_tail_one_line(const struct buf *b, int lines);

/*
 * An arena: many small allocations released at once, for data that lives
 * and dies together (an inventory's strings, a graph's names). Zero is an
 * empty arena. Allocations are aligned for any pointer or integer.
 */
struct arena_block;
struct arena {
	struct arena_block *head;
};

void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
void arena_release(struct arena *a);

struct strvec {
	char **v; /* NULL-terminated when nr > 0 */
	size_t nr;
	size_t alloc;
};

#define STRVEC_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void strvec_init(struct strvec *sv);
/* Takes a copy of s. */
void strvec_push(struct strvec *sv, const char *s);
/* Takes ownership of s. */
void strvec_push_nodup(struct strvec *sv, char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool strvec_contains(const struct strvec *sv, const char *s);
void strvec_release(struct strvec *sv);

/* Parses all of s as a base-10 integer in [min, max]; 0 or -1. */
int parse_long(const char *s, long min, long max, long *out);

/* Levenshtein distance, for "did you mean" hints. */
size_t edit_distance(const char *a, const char *b);

/* The CLOCK_REALTIME instant `ms` from now, for pthread_cond_timedwait. */
struct timespec;
void timespec_in_ms(struct timespec *ts, int ms);

/* Monotonic clock in seconds. */
double now_seconds(void);

/*
 * Private files (run logs). constel may run as root from cron or a service,
 * in directories others can write to: nothing it writes may follow a link
 * someone else planted.
 *
 * state_dir() is where constel keeps its state: $XDG_STATE_HOME/constel,
 * else $HOME/.local/state/constel, else the user's home from the password
 * database; never /tmp. NULL (error set) when there is no home at all.
 * dir_make_private() creates `path` and its missing parents (0700), then
 * checks that `path` is a directory (not a symlink) owned by this user and
 * writable by no one else. file_open_private() opens a file in such a
 * directory for writing, never through a symlink, created 0600; `append`
 * keeps what it holds, else it is truncated. Both return 0/a FILE or fail
 * (-1/NULL) with the error set.
 */
char *state_dir(void);
/*
 * Where constel keeps what it can compute again (the evaluation cache):
 * $XDG_CACHE_HOME/constel, else $HOME/.cache/constel, else under the
 * password database's home; never /tmp. NULL (error set) without a home.
 */
char *cache_dir(void);
int dir_make_private(const char *path);
FILE *file_open_private(const char *path, bool append);

/* Shell-quotes s for a POSIX sh command line (single quotes). */
char *shell_quote(const char *s);

#endif
