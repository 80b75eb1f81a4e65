/* test_emit.c - unit tests for src/engine/emit: whole UTF-8 characters out, stop strings cut. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "engine/emit.h"

#define FFFD "\xEF\xBF\xBD"

/* Push a NUL-terminated piece and check what comes out. */
static void push_expect(struct pc_emit *e, const char *piece, const char *want)
{
    assert_true(pc_emit_push(e, piece, strlen(piece)));
    size_t want_len = strlen(want);
    if (e->out.len != want_len || (want_len > 0 && memcmp(e->out.data, want, want_len) != 0))
        fail_msg("push \"%s\": out is \"%.*s\" (%zu bytes), want \"%s\"", piece, (int)e->out.len,
                 e->out.data ? e->out.data : "", e->out.len, want);
}

static void flush_expect(struct pc_emit *e, const char *want)
{
    pc_emit_flush(e);
    size_t want_len = strlen(want);
    if (e->out.len != want_len || (want_len > 0 && memcmp(e->out.data, want, want_len) != 0))
        fail_msg("flush: out is \"%.*s\" (%zu bytes), want \"%s\"", (int)e->out.len,
                 e->out.data ? e->out.data : "", e->out.len, want);
}

static void test_no_stops_released_whole(void **state)
{
    (void)state;
    struct pc_emit e;
    assert_true(pc_emit_init(&e, NULL, 0));
    push_expect(&e, "Hello", "Hello");
    push_expect(&e, ", world", ", world");
    push_expect(&e, "", "");
    push_expect(&e, "<|end|>", "<|end|>");
    push_expect(&e, "caf\xC3\xA9", "caf\xC3\xA9");
    assert_false(e.stopped);
    flush_expect(&e, "");
    pc_emit_free(&e);
}

static void test_split_utf8_held_then_whole(void **state)
{
    (void)state;
    struct pc_emit e;
    assert_true(pc_emit_init(&e, NULL, 0));
    /* "é" = C3 A9 split across two pushes. */
    push_expect(&e, "caf\xC3", "caf");
    push_expect(&e, "\xA9!", "\xC3\xA9!");
    /* "€" = E2 82 AC split 1 + 2. */
    push_expect(&e, "\xE2", "");
    push_expect(&e, "\x82\xAC", "\xE2\x82\xAC");
    /* A 4-byte emoji one byte at a time. */
    push_expect(&e, "\xF0", "");
    push_expect(&e, "\x9F", "");
    push_expect(&e, "\x98", "");
    push_expect(&e, "\x80 ok", "\xF0\x9F\x98\x80 ok");
    assert_false(e.stopped);
    pc_emit_free(&e);
}

static void test_stop_inside_one_piece(void **state)
{
    (void)state;
    static const char *const stops[] = {"<|end|>"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "Hello", "Hello");
    push_expect(&e, " there<|end|>ignored", " there");
    assert_true(e.stopped);
    /* Once stopped, nothing more comes out. */
    push_expect(&e, "more", "");
    assert_true(e.stopped);
    flush_expect(&e, "");
    pc_emit_free(&e);
}

static void test_stop_at_start(void **state)
{
    (void)state;
    static const char *const stops[] = {"</s>"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "</s>", "");
    assert_true(e.stopped);
    pc_emit_free(&e);
}

static void test_stop_split_across_pieces(void **state)
{
    (void)state;
    static const char *const stops[] = {"<|end|>"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "Hi <|e", "Hi ");
    assert_false(e.stopped);
    push_expect(&e, "nd|>", "");
    assert_true(e.stopped);
    flush_expect(&e, "");
    pc_emit_free(&e);

    /* One byte at a time: the stop's prefix never leaks. */
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "x", "x");
    const char *stop = "<|end|>";
    for (size_t i = 0; i + 1 < strlen(stop); i++) {
        char piece[2] = {stop[i], '\0'};
        push_expect(&e, piece, "");
        assert_false(e.stopped);
    }
    push_expect(&e, ">", "");
    assert_true(e.stopped);
    flush_expect(&e, "");
    pc_emit_free(&e);
}

static void test_stop_prefix_released_later(void **state)
{
    (void)state;
    static const char *const stops[] = {"<|end|>"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "a <|e", "a ");
    push_expect(&e, "xtra", "<|extra");
    assert_false(e.stopped);
    /* A held prefix that grows and then breaks off. */
    push_expect(&e, " <", " ");
    push_expect(&e, "|en", "");
    push_expect(&e, "d|", "");
    push_expect(&e, "x", "<|end|x");
    /* A new prefix starting inside the broken one: "<|<|end" holds "<|end". */
    push_expect(&e, "<|<|end", "<|");
    push_expect(&e, "!", "<|end!");
    assert_false(e.stopped);
    pc_emit_free(&e);
}

static void test_several_stops_earliest_wins(void **state)
{
    (void)state;
    static const char *const stops[] = {"STOP", "END"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 2));
    push_expect(&e, "abc END def STOP", "abc ");
    assert_true(e.stopped);
    pc_emit_free(&e);

    assert_true(pc_emit_init(&e, stops, 2));
    push_expect(&e, "abc STOP def END", "abc ");
    assert_true(e.stopped);
    pc_emit_free(&e);

    /* Both held across pieces; the one that starts earlier wins. */
    static const char *const stops2[] = {"###", "\n\n"};
    assert_true(pc_emit_init(&e, stops2, 2));
    push_expect(&e, "x\n", "x");
    push_expect(&e, "\n###", "");
    assert_true(e.stopped);
    pc_emit_free(&e);

    /* A held prefix of a long stop, completed as a shorter stop that starts inside it. */
    static const char *const stops3[] = {"abcd", "bcx"};
    assert_true(pc_emit_init(&e, stops3, 2));
    push_expect(&e, "zabc", "z");
    push_expect(&e, "x", "a");
    assert_true(e.stopped);
    pc_emit_free(&e);
}

static void test_empty_stops_ignored(void **state)
{
    (void)state;
    static const char *const stops[] = {"", "END", ""};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 3));
    assert_int_equal(e.n_stops, 1);
    push_expect(&e, "abc", "abc");
    push_expect(&e, "xEND", "x");
    assert_true(e.stopped);
    pc_emit_free(&e);
}

static void test_flush_releases_pending(void **state)
{
    (void)state;
    static const char *const stops[] = {"<|end|>"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "ok<|en", "ok");
    flush_expect(&e, "<|en");
    assert_false(e.stopped);
    /* Flushing again gives nothing. */
    flush_expect(&e, "");
    pc_emit_free(&e);

    /* A dangling partial character is dropped at the end. */
    assert_true(pc_emit_init(&e, NULL, 0));
    push_expect(&e, "a\xE2\x82", "a");
    flush_expect(&e, "");
    pc_emit_free(&e);

    /* A stop prefix followed by a partial character. */
    static const char *const stops2[] = {"<\xC3\xA9>"};
    assert_true(pc_emit_init(&e, stops2, 1));
    push_expect(&e, "z<\xC3", "z");
    flush_expect(&e, "<");
    pc_emit_free(&e);
}

static void test_multibyte_stop(void **state)
{
    (void)state;
    /* "。" = E3 80 82; "好" = E5 A5 BD. */
    static const char *const stops[] = {"\xE3\x80\x82"};
    struct pc_emit e;
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e, "\xE5\xA5\xBD\xE3\x80", "\xE5\xA5\xBD");
    push_expect(&e, "\x82tail", "");
    assert_true(e.stopped);
    pc_emit_free(&e);
}

static void test_invalid_bytes_become_replacement(void **state)
{
    (void)state;
    struct pc_emit e;
    assert_true(pc_emit_init(&e, NULL, 0));
    push_expect(&e, "\xff", FFFD);
    push_expect(&e, "\x80", FFFD);
    push_expect(&e,
                "a\x80"
                "b",
                "a" FFFD "b");
    /* A lead byte followed by something that does not continue it. */
    push_expect(&e, "\xE2", "");
    push_expect(&e, "x", FFFD "x");
    pc_emit_free(&e);

    /* Before a stop, too. */
    static const char *const stops[] = {"END"};
    assert_true(pc_emit_init(&e, stops, 1));
    push_expect(&e,
                "\xC3"
                "END",
                FFFD);
    assert_true(e.stopped);
    pc_emit_free(&e);
}

static void test_utf8_append_valid(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"", 0, ""},
        {"plain ascii", 11, "plain ascii"},
        {"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"},
        {"\xEF\xBF\xBD", 3, FFFD},
        {"\xF4\x8F\xBF\xBF", 4, "\xF4\x8F\xBF\xBF"}, /* U+10FFFF */
        {"\xff", 1, FFFD},
        {"\x80", 1, FFFD},
        {"a\xff"
         "b",
         3, "a" FFFD "b"},
        {"\xC0\xAF", 2, FFFD FFFD},                   /* overlong '/' */
        {"\xC1\xBF", 2, FFFD FFFD},                   /* overlong */
        {"\xE0\x80\x80", 3, FFFD FFFD FFFD},          /* overlong NUL */
        {"\xED\xA0\x80", 3, FFFD FFFD FFFD},          /* UTF-16 surrogate */
        {"\xF0\x80\x80\x80", 4, FFFD FFFD FFFD FFFD}, /* overlong */
        {"\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD}, /* beyond U+10FFFF */
        {"\xF5\x80\x80\x80", 4, FFFD FFFD FFFD FFFD}, /* invalid lead */
        {"ab\xE2\x82", 4, "ab" FFFD FFFD},            /* truncated at the end */
        {"\xE2\x82"
         "c",
         3, FFFD FFFD "c"},
        {"x\0y", 3, "x\0y"}, /* NUL is valid UTF-8 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pc_buf b = PC_BUF_INIT;
        assert_true(pc_buf_appends(&b, "<"));
        assert_true(pc_utf8_append_valid(&b, cases[i].in, cases[i].len));
        /* want may contain NUL only in the last case, where its length is 3. */
        size_t want_len = i == sizeof(cases) / sizeof(cases[0]) - 1 ? 3 : strlen(cases[i].want);
        if (b.len != 1 + want_len || memcmp(b.data + 1, cases[i].want, want_len) != 0)
            fail_msg("case %zu: got %zu bytes, want %zu", i, b.len - 1, want_len);
        assert_int_equal(b.data[b.len], '\0');
        pc_buf_free(&b);
    }
}

static void test_utf8_complete_prefix(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t want;
    } cases[] = {
        {"", 0},
        {"abc", 3},
        {"a\xC3", 1},
        {"a\xC3\xA9", 3},
        {"\xE2", 0},
        {"\xE2\x82", 0},
        {"\xE2\x82\xAC", 3},
        {"ab\xE2\x82", 2},
        {"\xF0\x9F\x98", 0},
        {"\xF0\x9F\x98\x80", 4},
        {"x\xF0", 1},
        {"x\xF0\x9F\x98\x80y", 6},
        {"\xff", 1},         /* never valid: nothing to wait for */
        {"\x80", 1},         /* lone continuation: nothing to wait for */
        {"\xC3\xA9\x80", 3}, /* stray continuation after a whole character */
        {"\x80\x80\x80\x80\x80", 5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = pc_utf8_complete_prefix(cases[i].in, strlen(cases[i].in));
        if (got != cases[i].want)
            fail_msg("case %zu: got %zu, want %zu", i, got, cases[i].want);
    }
    /* len shorter than the string: only the first len bytes count. */
    assert_int_equal(pc_utf8_complete_prefix("a\xC3\xA9", 2), 1);
}

/* Every way of cutting the text into two or three pieces gives the same output. */
static void check_all_splits(const char *const *stops, size_t n_stops, const char *text,
                             const char *want, bool want_stopped)
{
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct pc_emit e;
            assert_true(pc_emit_init(&e, stops, n_stops));
            struct pc_buf all = PC_BUF_INIT;
            const size_t cuts[4] = {0, i, j, n};
            for (int k = 0; k < 3; k++) {
                assert_true(pc_emit_push(&e, text + cuts[k], cuts[k + 1] - cuts[k]));
                /* Each release is valid UTF-8: whole characters only. */
                assert_int_equal(pc_utf8_complete_prefix(e.out.data, e.out.len), e.out.len);
                assert_true(pc_buf_append(&all, e.out.data, e.out.len));
            }
            pc_emit_flush(&e);
            assert_true(pc_buf_append(&all, e.out.data, e.out.len));
            if (all.len != strlen(want) || memcmp(all.data, want, all.len) != 0)
                fail_msg("cuts %zu,%zu: got \"%s\", want \"%s\"", i, j, all.data, want);
            assert_int_equal(e.stopped, want_stopped);
            assert_null(strstr(all.data, FFFD));
            pc_buf_free(&all);
            pc_emit_free(&e);
        }
    }
}

static void test_any_split_same_output(void **state)
{
    (void)state;
    static const char *const stops[] = {"<|end|>", "\n\nUser:"};
    check_all_splits(stops, 2, "H\xC3\xA9llo \xF0\x9F\x91\x8B <|e <|end|> after",
                     "H\xC3\xA9llo \xF0\x9F\x91\x8B <|e ", true);
    check_all_splits(stops, 2, "a\n\nUse \xE2\x82\xAC\n\nUser: b", "a\n\nUse \xE2\x82\xAC", true);
    check_all_splits(stops, 2, "no stop \xE2\x82\xAC here <|end|",
                     "no stop \xE2\x82\xAC here <|end|", false);
    check_all_splits(NULL, 0, "\xF0\x9F\x98\x80\xC3\xA9z", "\xF0\x9F\x98\x80\xC3\xA9z", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stops_released_whole),
        cmocka_unit_test(test_split_utf8_held_then_whole),
        cmocka_unit_test(test_stop_inside_one_piece),
        cmocka_unit_test(test_stop_at_start),
        cmocka_unit_test(test_stop_split_across_pieces),
        cmocka_unit_test(test_stop_prefix_released_later),
        cmocka_unit_test(test_several_stops_earliest_wins),
        cmocka_unit_test(test_empty_stops_ignored),
        cmocka_unit_test(test_flush_releases_pending),
        cmocka_unit_test(test_multibyte_stop),
        cmocka_unit_test(test_invalid_bytes_become_replacement),
        cmocka_unit_test(test_utf8_append_valid),
        cmocka_unit_test(test_utf8_complete_prefix),
        cmocka_unit_test(test_any_split_same_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
