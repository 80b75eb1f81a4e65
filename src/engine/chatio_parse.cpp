/* chatio_parse.cpp - the shim's second half: an answer, as it grows, parsed by the template
 * family's parser (common_chat_parse) into content, reasoning and tool calls, with what each
 * added text brought. */
#include "chatioInt.h"

#include <exception>
#include <random>
#include <string>
#include <vector>

#include "chat.h"
#include "json.h"

struct pc_chat_parser {
    common_chat_parser_params params;
    std::string text; /* the answer so far */
    common_chat_msg msg;
    std::vector<std::string> ids; /* call i's id, fixed once given */
    size_t sent_content = 0, sent_thinking = 0, sent_calls = 0;
    bool one_call; /* parallel_tool_calls off */
    bool settled;  /* one_call, and a second call began: the first is whole, the answer done */
};

extern "C" enum pc_err pc_chat_parser_new(const struct pc_chat_prompt *p,
                                          struct pc_chat_parser **out, struct pc_error *err)
{
    *out = nullptr;
    auto *ps = new (std::nothrow) pc_chat_parser();
    if (ps == nullptr)
        return pc_error_set(err, PC_ERR_NOMEM, "chat parser: out of memory");
    try {
        ps->params.format = (common_chat_format)p->format;
        ps->params.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
        ps->params.generation_prompt = p->gen_prompt;
        ps->params.parse_tool_calls = p->parse_tool_calls;
        ps->one_call = p->one_call;
        if (!p->parser.empty())
            ps->params.parser.load(p->parser);
    } catch (const std::exception &e) {
        delete ps;
        return pc_error_set(err, PC_ERR_TEMPLATE, "chat parser: %s", e.what());
    }
    *out = ps;
    return PC_OK;
}

/* "call_" and 24 random letters and digits, as OpenAI's ids look. */
static std::string new_call_id()
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<size_t> pick(0, sizeof(alnum) - 2);
    std::string id = "call_";
    for (int i = 0; i < 24; i++)
        id += alnum[pick(rng)];
    return id;
}

/* What of now follows the sent bytes of it: the new text, when what was sent is still its
 * beginning (a partial parse may take back a few bytes that looked like text; they wait). */
static void news_of(const std::string &now, size_t *sent, const char **text, size_t *len)
{
    *text = nullptr;
    *len = 0;
    if (now.size() <= *sent)
        return;
    *text = now.c_str() + *sent;
    *len = now.size() - *sent;
    *sent = now.size();
}

extern "C" enum pc_err pc_chat_parser_add(struct pc_chat_parser *ps, const char *text, size_t len,
                                          bool final, struct pc_chat_news *news,
                                          struct pc_error *err)
{
    *news = pc_chat_news{};
    common_chat_msg msg;
    try {
        ps->text.append(text, len);
        msg = common_chat_parse(ps->text, !final, ps->params);
        /* An answer cut off (at num_predict) inside a call ends with a call that is not one:
         * arguments that are no JSON, or no name yet. */
        while (final && !msg.tool_calls.empty() &&
               (msg.tool_calls.back().name.empty() ||
                common_json::parse_no_throw(msg.tool_calls.back().arguments).is_discarded()))
            msg.tool_calls.pop_back();
    } catch (const std::bad_alloc &) {
        return pc_error_set(err, PC_ERR_NOMEM, "chat parser: out of memory");
    } catch (const std::exception &e) {
        if (final)
            return pc_error_set(err, PC_ERR_TEMPLATE,
                                "the answer does not parse in the template's format: %s", e.what());
        return PC_OK; /* a partial answer that does not parse yet: wait for more */
    }
    /* Sent text stays sent: a parse that no longer starts with it waits for one that does. */
    if (msg.content.compare(0, ps->sent_content, ps->msg.content, 0, ps->sent_content) != 0 ||
        msg.reasoning_content.compare(0, ps->sent_thinking, ps->msg.reasoning_content, 0,
                                      ps->sent_thinking) != 0 ||
        msg.tool_calls.size() < ps->sent_calls)
        return PC_OK;
    /* Without parallel calls the template's format may still hold several (llama.cpp's grammars
     * allow them): the first is the answer, and once a second begins the first is whole. */
    if (ps->one_call && msg.tool_calls.size() > 1) {
        msg.tool_calls.resize(1);
        ps->settled = true;
    }
    for (size_t i = 0; i < msg.tool_calls.size(); i++) {
        if (i == ps->ids.size())
            ps->ids.push_back(msg.tool_calls[i].id.empty() ? new_call_id() : msg.tool_calls[i].id);
        msg.tool_calls[i].id = ps->ids[i];
    }
    ps->msg = std::move(msg);
    news_of(ps->msg.content, &ps->sent_content, &news->content, &news->content_len);
    news_of(ps->msg.reasoning_content, &ps->sent_thinking, &news->thinking, &news->thinking_len);
    /* A call is whole once the next one begins, or the answer ends. */
    size_t n = ps->msg.tool_calls.size();
    size_t whole = final || ps->settled ? n : (n > 0 ? n - 1 : 0);
    news->first_call = ps->sent_calls;
    if (whole > ps->sent_calls) {
        news->n_calls = whole - ps->sent_calls;
        ps->sent_calls = whole;
    }
    return PC_OK;
}

extern "C" bool pc_chat_parser_settled(const struct pc_chat_parser *ps)
{
    return ps->settled;
}

extern "C" const char *pc_chat_parser_content(const struct pc_chat_parser *ps)
{
    return ps->msg.content.c_str();
}

extern "C" const char *pc_chat_parser_thinking(const struct pc_chat_parser *ps)
{
    return ps->msg.reasoning_content.c_str();
}

extern "C" size_t pc_chat_parser_n_calls(const struct pc_chat_parser *ps)
{
    return ps->msg.tool_calls.size();
}

extern "C" struct pc_chat_tool_call pc_chat_parser_call(const struct pc_chat_parser *ps, size_t i)
{
    const common_chat_tool_call &c = ps->msg.tool_calls[i];
    return pc_chat_tool_call{c.id.c_str(), c.name.c_str(), c.arguments.c_str()};
}

extern "C" void pc_chat_parser_free(struct pc_chat_parser *ps)
{
    delete ps;
}
