/* test_chatio.c - the chat shim over llama.cpp's common chat library, on tiny models written with
 * real templates (Qwen 2.5, Qwen 3, Llama 3.1, TinyLlama): what each template can do, prompts
 * with tools, the grammars a schema and a required call give, and the parsers of each family on
 * known answers, fed in pieces as a stream brings them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "testmodel.h"

static char dir[PATH_MAX];
static struct pc_model *qwen25, *qwen3, *llama31, *tinyllama;

static const struct pc_chat_tool weather = {
    .name = "get_weather",
    .description = "The weather in a city",
    .parameters = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"enum\":"
                  "[\"Paris\",\"Rome\"]}},\"required\":[\"city\"]}",
};

static struct pc_model *make(const char *name, const char *args)
{
    char path[PATH_MAX + 64], cmd[3 * PATH_MAX];
    const char *mk = getenv("PC_TEST_MKMODEL");
    snprintf(path, sizeof(path), "%s/%s.gguf", dir, name);
    snprintf(cmd, sizeof(cmd), "'%s' --preset tiny %s -q -o '%s'", mk ? mk : "mkmodel", args, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the test model: %s\n", cmd);
        abort();
    }
    return load_test_model(path, 1024);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", test_dir("chatio"));
    pc_engine_init(NULL, "none");
    qwen25 = make("qwen25", "--arch qwen2 --template Qwen-Qwen2.5-7B-Instruct");
    qwen3 = make("qwen3", "--arch qwen2 --template Qwen-Qwen3-0.6B");
    llama31 = make("llama31", "--vocab ggml-vocab-llama-bpe --template "
                              "meta-llama-Llama-3.1-8B-Instruct");
    tinyllama = make("tinyllama", "");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pc_model_free(qwen25);
    pc_model_free(qwen3);
    pc_model_free(llama31);
    pc_model_free(tinyllama);
    return 0;
}

static struct pc_chat_prompt *render(struct pc_model *m, const struct pc_chat_input *in)
{
    struct pc_chat_prompt *p = NULL;
    struct pc_error err = {0};
    if (pc_chat_render(m, in, &p, &err) != PC_OK)
        fail_msg("render: %s", err.msg);
    return p;
}

static const struct pc_chat_msg question[] = {{.role = "user", .content = "Weather in Paris?"}};

static struct pc_chat_input with_tools(enum pc_tool_choice choice)
{
    return (struct pc_chat_input){.msgs = question,
                                  .n_msgs = 1,
                                  .tools = &weather,
                                  .n_tools = 1,
                                  .tool_choice = choice,
                                  .parallel_tool_calls = true,
                                  .add_assistant = true};
}

static void test_caps(void **state)
{
    (void)state;
    struct pc_chat_caps c;
    pc_model_chat_caps(qwen25, &c);
    assert_true(c.tools);
    assert_false(c.thinking);
    pc_model_chat_caps(qwen3, &c);
    assert_true(c.tools);
    assert_true(c.thinking);
    pc_model_chat_caps(llama31, &c);
    assert_true(c.tools);
    pc_model_chat_caps(tinyllama, &c);
    assert_false(c.tools);
    assert_false(c.thinking);
}

static void test_prompt_with_tools(void **state)
{
    (void)state;
    struct pc_chat_input in = with_tools(PC_TOOL_CHOICE_AUTO);
    struct pc_chat_prompt *p = render(qwen25, &in);
    const char *text = pc_chat_prompt_text(p);
    assert_non_null(strstr(text, "<tools>"));
    assert_non_null(strstr(text, "\"name\": \"get_weather\""));
    assert_non_null(strstr(text, "<|im_start|>assistant\n"));
    /* auto: free text until the model opens a call, then the grammar holds. */
    struct pc_chat_grammar g;
    assert_true(pc_chat_prompt_grammar(p, &g));
    assert_true(g.lazy);
    assert_true(g.n_patterns + g.n_tokens > 0);
    pc_chat_prompt_free(p);

    /* required: the grammar holds from the first token, and starts with the call. */
    in = with_tools(PC_TOOL_CHOICE_REQUIRED);
    p = render(qwen25, &in);
    assert_true(pc_chat_prompt_grammar(p, &g));
    assert_false(g.lazy);
    assert_true(g.n_prefix >= 3); /* "<|im_start|>", "assistant", "\n" */
    assert_non_null(strstr(g.grammar, "root ::= \"<|im_start|>assistant\\n\" space tool-calls\n"));
    pc_chat_prompt_free(p);

    /* Qwen 3: an optional thinking block may come first, but no free text. */
    p = render(qwen3, &in);
    assert_true(pc_chat_prompt_grammar(p, &g));
    const char *root = strstr(g.grammar, "root ::= ");
    assert_non_null(root);
    const char *eol = strchr(root, '\n');
    assert_true(eol - root > 13 && strncmp(eol - 13, ")? tool-calls", 13) == 0);
    assert_non_null(strstr(root, "\"<think>\""));
    pc_chat_prompt_free(p);

    /* none: described, never called; no grammar. */
    in = with_tools(PC_TOOL_CHOICE_NONE);
    p = render(qwen25, &in);
    assert_false(pc_chat_prompt_grammar(p, &g));
    pc_chat_prompt_free(p);
}

static void test_schema_grammar(void **state)
{
    (void)state;
    struct pc_chat_input in = {.msgs = question,
                               .n_msgs = 1,
                               .add_assistant = true,
                               .json_schema = "{\"type\":\"object\",\"properties\":{\"n\":{"
                                              "\"type\":\"integer\"}},\"required\":[\"n\"]}"};
    struct pc_chat_prompt *p = render(qwen25, &in);
    struct pc_chat_grammar g;
    assert_true(pc_chat_prompt_grammar(p, &g));
    assert_false(g.lazy);
    assert_non_null(strstr(g.grammar, "\"\\\"n\\\"\""));
    pc_chat_prompt_free(p);

    /* TinyLlama's template: the grammar starts at "<|assistant|>\n", which SentencePiece
     * tokenizes alone with a space in front; the prompt's own tokens spell it. */
    p = render(tinyllama, &in);
    assert_true(pc_chat_prompt_grammar(p, &g));
    assert_true(g.n_prefix > 0);
    pc_chat_prompt_free(p);

    struct pc_error err = {0};
    in.json_schema = "{\"type\": 7}";
    p = (struct pc_chat_prompt *)0x1;
    assert_int_equal(pc_chat_render(qwen25, &in, &p, &err), PC_ERR_INVALID);
    assert_null(p);
    assert_non_null(strstr(err.msg, "JSON schema"));
}

/* Feed answer to a parser of p three bytes at a time; gather what came out. */
struct got {
    char content[512], thinking[512];
    size_t calls;
};

static void feed(struct pc_chat_prompt *p, const char *answer, struct got *got,
                 struct pc_chat_parser **out)
{
    struct pc_chat_parser *ps = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_chat_parser_new(p, &ps, &err), PC_OK);
    memset(got, 0, sizeof(*got));
    size_t len = strlen(answer);
    for (size_t i = 0; i < len || i == 0; i += 3) {
        size_t k = i + 3 < len ? 3 : len - i;
        struct pc_chat_news nw;
        assert_int_equal(pc_chat_parser_add(ps, answer + i, k, i + 3 >= len, &nw, &err), PC_OK);
        strncat(got->content, nw.content ? nw.content : "", nw.content_len);
        strncat(got->thinking, nw.thinking ? nw.thinking : "", nw.thinking_len);
        assert_int_equal(nw.first_call, got->calls);
        got->calls += nw.n_calls;
    }
    *out = ps;
}

static void test_parse_hermes_qwen(void **state)
{
    (void)state;
    struct pc_chat_input in = with_tools(PC_TOOL_CHOICE_AUTO);
    struct pc_chat_prompt *p = render(qwen25, &in);
    struct pc_chat_parser *ps;
    struct got got;
    feed(p,
         "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
         "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
         "{\"city\": \"Rome\"}}\n</tool_call>",
         &got, &ps);
    assert_string_equal(got.content, "Let me look.\n");
    assert_int_equal(got.calls, 2);
    assert_int_equal(pc_chat_parser_n_calls(ps), 2);
    struct pc_chat_tool_call c = pc_chat_parser_call(ps, 1);
    assert_string_equal(c.name, "get_weather");
    assert_string_equal(c.arguments, "{\"city\": \"Rome\"}");
    assert_true(strncmp(c.id, "call_", 5) == 0);
    assert_string_not_equal(c.id, pc_chat_parser_call(ps, 0).id);
    pc_chat_parser_free(ps);

    /* parallel_tool_calls off: the first call is the answer, settled once a second begins. */
    pc_chat_prompt_free(p);
    in.parallel_tool_calls = false;
    p = render(qwen25, &in);
    struct pc_chat_news nw;
    struct pc_error err = {0};
    assert_int_equal(pc_chat_parser_new(p, &ps, &err), PC_OK);
    const char *one = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                      "\"Rome\"}}\n</tool_call>\n";
    assert_int_equal(pc_chat_parser_add(ps, one, strlen(one), false, &nw, &err), PC_OK);
    assert_false(pc_chat_parser_settled(ps));
    assert_int_equal(nw.n_calls, 0);
    const char *two = "<tool_call>\n{\"name\": \"get_weather\", \"arg";
    assert_int_equal(pc_chat_parser_add(ps, two, strlen(two), false, &nw, &err), PC_OK);
    assert_true(pc_chat_parser_settled(ps));
    assert_int_equal(nw.first_call, 0);
    assert_int_equal(nw.n_calls, 1);
    assert_int_equal(pc_chat_parser_n_calls(ps), 1);
    assert_string_equal(pc_chat_parser_call(ps, 0).arguments, "{\"city\": \"Rome\"}");
    pc_chat_parser_free(ps);
    in.parallel_tool_calls = true;

    /* Plain text stays text. */
    feed(p, "No tools needed: it is sunny.", &got, &ps);
    assert_string_equal(got.content, "No tools needed: it is sunny.");
    assert_int_equal(got.calls, 0);
    pc_chat_parser_free(ps);

    /* Cut off inside a call (num_predict): no call that is not one. */
    feed(p, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci", &got, &ps);
    assert_int_equal(got.calls, 0);
    assert_int_equal(pc_chat_parser_n_calls(ps), 0);
    pc_chat_parser_free(ps);
    pc_chat_prompt_free(p);
}

static void test_parse_llama31(void **state)
{
    (void)state;
    struct pc_chat_input in = with_tools(PC_TOOL_CHOICE_AUTO);
    struct pc_chat_prompt *p = render(llama31, &in);
    assert_non_null(strstr(pc_chat_prompt_text(p), "get_weather"));
    struct pc_chat_parser *ps;
    struct got got;
    feed(p, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}", &got, &ps);
    assert_int_equal(got.calls, 1);
    struct pc_chat_tool_call c = pc_chat_parser_call(ps, 0);
    assert_string_equal(c.name, "get_weather");
    assert_string_equal(c.arguments, "{\"city\": \"Rome\"}");
    assert_string_equal(got.content, "");
    pc_chat_parser_free(ps);
    pc_chat_prompt_free(p);
}

static void test_parse_reasoning(void **state)
{
    (void)state;
    struct pc_chat_input in = {
        .msgs = question, .n_msgs = 1, .think = PC_THINK_ON, .add_assistant = true};
    struct pc_chat_prompt *p = render(qwen3, &in);
    struct pc_chat_parser *ps;
    struct got got;
    feed(p, "<think>\nParis is in France.\n</think>\n\nIt is sunny.", &got, &ps);
    /* The reasoning keeps the newline before its closing tag, as llama-server's does. */
    assert_string_equal(got.thinking, "Paris is in France.\n");
    assert_string_equal(got.content, "It is sunny.");
    assert_string_equal(pc_chat_parser_thinking(ps), got.thinking);
    pc_chat_parser_free(ps);
    pc_chat_prompt_free(p);

    /* Thinking off: the template closes an empty thinking block in the prompt. */
    in.think = PC_THINK_OFF;
    p = render(qwen3, &in);
    const char *text = pc_chat_prompt_text(p);
    assert_non_null(strstr(text, "<think>\n\n</think>"));
    pc_chat_prompt_free(p);

    /* Reasoning and a call in one answer. */
    in = with_tools(PC_TOOL_CHOICE_AUTO);
    in.think = PC_THINK_ON;
    p = render(qwen3, &in);
    feed(p,
         "<think>\nI need the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", "
         "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
         &got, &ps);
    assert_string_equal(got.thinking, "I need the weather.\n");
    assert_int_equal(got.calls, 1);
    assert_string_equal(pc_chat_parser_call(ps, 0).arguments, "{\"city\": \"Paris\"}");
    pc_chat_parser_free(ps);
    pc_chat_prompt_free(p);
}

/* A precharge of leading messages with tools gives the first tokens of the later chat with the
 * same tools. */
static void test_prefix_with_tools(void **state)
{
    (void)state;
    struct pc_chat_msg msgs[] = {{.role = "system", .content = "You fill forms."},
                                 {.role = "user", .content = "Weather in Paris?"}};
    struct pc_chat_input in = {.msgs = msgs, .n_msgs = 1, .tools = &weather, .n_tools = 1};
    int32_t *pre = NULL, *all = NULL;
    size_t npre = 0, nall = 0;
    struct pc_error err = {0};
    assert_int_equal(pc_model_prefix_tokens(qwen25, &in, &pre, &npre, &err), PC_OK);
    in.n_msgs = 2;
    in.add_assistant = true;
    struct pc_chat_prompt *p = render(qwen25, &in);
    assert_non_null(strstr(pc_chat_prompt_text(p), "get_weather"));
    assert_int_equal(pc_model_tokenize(qwen25, pc_chat_prompt_text(p), &all, &nall, &err), PC_OK);
    assert_true(npre > 50 && npre < nall);
    assert_memory_equal(pre, all, npre * sizeof(*pre));
    free(pre);
    free(all);
    pc_chat_prompt_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_prompt_with_tools),
        cmocka_unit_test(test_schema_grammar),
        cmocka_unit_test(test_parse_hermes_qwen),
        cmocka_unit_test(test_parse_llama31),
        cmocka_unit_test(test_parse_reasoning),
        cmocka_unit_test(test_prefix_with_tools),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
