/* chatio_render.cpp - the shim's first half: a model's Jinja chat templates, and a conversation
 * (tools, schema, thinking) rendered through llama.cpp's common chat library into a prompt, a
 * grammar and its triggers. */
#include "chatioInt.h"

#include <cctype>
#include <exception>
#include <map>
#include <string>

#include "chat.h"
#include "common.h"
#include "json-schema-to-grammar.h"

extern "C" {
#include "../base/log.h"
}

struct pc_chat_tmpl {
    common_chat_templates_ptr t;
};

extern "C" enum pc_err pc_chat_tmpl_new(const struct llama_model *model, struct pc_chat_tmpl **out,
                                        struct pc_error *err)
{
    *out = nullptr;
    auto *t = new (std::nothrow) pc_chat_tmpl();
    if (t == nullptr)
        return pc_error_set(err, PC_ERR_NOMEM, "chat template: out of memory");
    try {
        t->t = common_chat_templates_init(model, "");
    } catch (const std::exception &e) {
        pc_log_warn("engine", "the model's chat template does not parse (%s); using ChatML",
                    e.what());
        try {
            t->t = common_chat_templates_init(model, "chatml");
        } catch (const std::exception &e2) {
            delete t;
            return pc_error_set(err, PC_ERR_TEMPLATE, "chat template: %s", e2.what());
        }
    }
    *out = t;
    return PC_OK;
}

extern "C" void pc_chat_tmpl_free(struct pc_chat_tmpl *t)
{
    delete t;
}

extern "C" void pc_chat_tmpl_caps(const struct pc_chat_tmpl *t, struct pc_chat_caps *out)
{
    *out = pc_chat_caps{};
    try {
        std::map<std::string, bool> caps = common_chat_templates_get_caps(t->t.get());
        out->tools = caps["supports_tools"] && caps["supports_tool_calls"];
        out->thinking = common_chat_templates_support_enable_thinking(t->t.get());
    } catch (const std::exception &e) {
        pc_log_warn("engine", "chat template capabilities: %s", e.what());
    }
}

static std::string str(const char *s)
{
    return s != nullptr ? std::string(s) : std::string();
}

static common_chat_msg to_common(const pc_chat_msg &in)
{
    common_chat_msg m;
    m.role = str(in.role);
    m.content = str(in.content);
    m.reasoning_content = str(in.thinking);
    m.tool_name = str(in.tool_name);
    m.tool_call_id = str(in.tool_call_id);
    for (size_t i = 0; i < in.n_tool_calls; i++) {
        const pc_chat_tool_call &c = in.tool_calls[i];
        m.tool_calls.push_back({str(c.name), c.arguments ? c.arguments : "{}", str(c.id)});
    }
    return m;
}

static common_chat_templates_inputs to_inputs(const pc_chat_input *in)
{
    common_chat_templates_inputs inputs;
    for (size_t i = 0; i < in->n_msgs; i++)
        inputs.messages.push_back(to_common(in->msgs[i]));
    for (size_t i = 0; i < in->n_tools; i++) {
        const pc_chat_tool &t = in->tools[i];
        /* A function without parameters takes none: an empty object. */
        inputs.tools.push_back(
            {str(t.name), str(t.description),
             t.parameters ? t.parameters : "{\"type\": \"object\", \"properties\": {}}"});
    }
    switch (in->tool_choice) {
    case PC_TOOL_CHOICE_AUTO:
        inputs.tool_choice = COMMON_CHAT_TOOL_CHOICE_AUTO;
        break;
    case PC_TOOL_CHOICE_NONE:
        inputs.tool_choice = COMMON_CHAT_TOOL_CHOICE_NONE;
        break;
    case PC_TOOL_CHOICE_REQUIRED:
        inputs.tool_choice = COMMON_CHAT_TOOL_CHOICE_REQUIRED;
        break;
    }
    inputs.parallel_tool_calls = in->parallel_tool_calls;
    inputs.json_schema = str(in->json_schema);
    inputs.add_generation_prompt = in->add_assistant;
    inputs.use_jinja = true;
    /* Reasoning goes apart from the content (reasoning_content, message.thinking), as
     * llama-server's default "deepseek" format puts it. */
    inputs.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    inputs.enable_thinking = in->think != PC_THINK_OFF;
    return inputs;
}

/* llama-server's rule (common_sampler_init): a trigger word that is one preserved token
 * triggers on that token; any other word is a pattern, as are patterns. */
static void add_triggers(pc_chat_prompt *p, const common_chat_params &cp,
                         const struct llama_vocab *vocab)
{
    for (const common_grammar_trigger &tr : cp.grammar_triggers) {
        switch (tr.type) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: {
            std::vector<llama_token> ids = common_tokenize(vocab, tr.value, false, true);
            bool preserved = false;
            for (const std::string &s : cp.preserved_tokens)
                preserved = preserved || s == tr.value;
            if (ids.size() == 1 && preserved)
                p->trigger_tokens.push_back(ids[0]);
            else
                p->patterns.push_back(regex_escape(tr.value));
            break;
        }
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:
            p->patterns.push_back(tr.value);
            break;
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
            const std::string &v = tr.value;
            std::string anchored = "^$";
            if (!v.empty())
                anchored = (v.front() != '^' ? "^" : "") + v + (v.back() != '$' ? "$" : "");
            p->patterns.push_back(anchored);
            break;
        }
        case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:
            p->trigger_tokens.push_back(tr.token);
            break;
        }
    }
    for (const std::string &s : p->patterns)
        p->pattern_ptrs.push_back(s.c_str());
}

/* Tokens that spell prefix, the end of prompt that the grammar begins with. The prompt's own
 * tail, when its tokens end exactly there: tokenized alone, a SentencePiece vocabulary would put
 * a space before it that the grammar refuses (TinyLlama's "<|assistant|>"). Else the prefix
 * alone, less a leading space token, as common_sampler_init feeds it. */
static std::vector<llama_token> prefix_tokens(const struct llama_vocab *vocab,
                                              const std::string &prompt, const std::string &prefix)
{
    if (prefix.empty())
        return {};
    if (prompt.size() >= prefix.size() &&
        prompt.compare(prompt.size() - prefix.size(), prefix.size(), prefix) == 0) {
        std::vector<llama_token> toks = common_tokenize(vocab, prompt, false, true);
        std::string tail;
        size_t i = toks.size();
        while (i > 0 && tail.size() < prefix.size())
            tail.insert(0, common_token_to_piece(vocab, toks[--i], true));
        if (tail == prefix)
            return std::vector<llama_token>(toks.begin() + (long)i, toks.end());
    }
    std::vector<llama_token> toks = common_tokenize(vocab, prefix, false, true), out;
    for (size_t i = 0; i < toks.size(); i++) {
        std::string piece = common_token_to_piece(vocab, toks[i], true);
        if (i == 0 && !piece.empty() && std::isspace((unsigned char)piece[0]) &&
            !std::isspace((unsigned char)prefix[0]))
            continue;
        out.push_back(toks[i]);
    }
    return out;
}

/* tool_choice "required" means the answer is the calls. llama.cpp's tool grammars let free text
 * come first (root ::= ... until-N? tool-calls: text up to the first call marker), which a
 * trained model skips but nothing makes it: without that optional element in the root rule the
 * call starts at once, as OpenAI's required does. The rule names are the converter's own. */
static void calls_at_once(std::string &grammar)
{
    size_t root = grammar.compare(0, 9, "root ::= ") == 0 ? 0 : grammar.find("\nroot ::= ");
    if (root == std::string::npos)
        return;
    size_t end = grammar.find('\n', root + 1);
    if (end == std::string::npos)
        end = grammar.size();
    /* The last " until-<digits>?" of the rule: the text before the calls (a thinking block's
     * own until-N, which is not optional, stays). */
    size_t cut = std::string::npos, cut_len = 0;
    for (size_t at = grammar.find(" until-", root); at < end;
         at = grammar.find(" until-", at + 1)) {
        size_t k = at + 7;
        while (k < end && std::isdigit((unsigned char)grammar[k]))
            k++;
        if (k > at + 7 && k < end && grammar[k] == '?') {
            cut = at;
            cut_len = k + 1 - at;
        }
    }
    if (cut != std::string::npos)
        grammar.erase(cut, cut_len);
}

extern "C" enum pc_err pc_chat_tmpl_render(const struct pc_chat_tmpl *t,
                                           const struct llama_vocab *vocab,
                                           const struct pc_chat_input *in,
                                           struct pc_chat_prompt **out, struct pc_error *err)
{
    *out = nullptr;
    auto *p = new (std::nothrow) pc_chat_prompt();
    if (p == nullptr)
        return pc_error_set(err, PC_ERR_NOMEM, "chat template: out of memory");
    try {
        common_chat_templates_inputs inputs = to_inputs(in);
        /* A schema that gives no grammar is the request's fault, said as such, before the
         * template folds it into its own. */
        if (in->json_schema != nullptr) {
            try {
                json_schema_to_grammar(common_json::parse(inputs.json_schema));
            } catch (const std::exception &e) {
                delete p;
                return pc_error_set(err, PC_ERR_INVALID, "the JSON schema gives no grammar: %s",
                                    e.what());
            }
        }
        common_chat_params cp = common_chat_templates_apply(t->t.get(), inputs);
        p->text = std::move(cp.prompt);
        p->grammar = cp.grammar;
        if (in->tool_choice == PC_TOOL_CHOICE_REQUIRED && in->n_tools > 0 && !cp.grammar_lazy)
            calls_at_once(p->grammar);
        p->lazy = cp.grammar_lazy && !cp.grammar.empty();
        if (!p->lazy && !p->grammar.empty())
            p->prefix_tokens = prefix_tokens(vocab, p->text, cp.generation_prompt);
        if (p->lazy)
            add_triggers(p, cp, vocab);
        /* Tool and thinking markers that are control tokens (Llama 3.1's <|python_tag|>) keep
         * their text in the answer, for the parser: llama-server's preserved tokens. */
        for (const std::string &s : cp.preserved_tokens) {
            std::vector<llama_token> ids = common_tokenize(vocab, s, false, true);
            if (ids.size() == 1)
                p->preserved.push_back(ids[0]);
        }
        p->stops = cp.additional_stops;
        for (const std::string &s : p->stops)
            p->stop_ptrs.push_back(s.c_str());
        p->format = (int)cp.format;
        p->parser = cp.parser;
        p->gen_prompt = cp.generation_prompt;
        p->parse_tool_calls = in->n_tools > 0 && in->tool_choice != PC_TOOL_CHOICE_NONE;
        p->one_call = p->parse_tool_calls && !in->parallel_tool_calls;
    } catch (const std::bad_alloc &) {
        delete p;
        return pc_error_set(err, PC_ERR_NOMEM, "chat template: out of memory");
    } catch (const std::exception &e) {
        delete p;
        return pc_error_set(err, in->n_tools > 0 ? PC_ERR_INVALID : PC_ERR_TEMPLATE,
                            "the chat template could not be applied: %s", e.what());
    }
    *out = p;
    return PC_OK;
}

extern "C" const char *pc_chat_prompt_text(const struct pc_chat_prompt *p)
{
    return p->text.c_str();
}

extern "C" bool pc_chat_prompt_grammar(const struct pc_chat_prompt *p, struct pc_chat_grammar *out)
{
    *out = pc_chat_grammar{};
    if (p->grammar.empty())
        return false;
    out->grammar = p->grammar.c_str();
    out->prefix = p->prefix_tokens.data();
    out->n_prefix = p->prefix_tokens.size();
    out->lazy = p->lazy;
    out->patterns = p->pattern_ptrs.data();
    out->n_patterns = p->pattern_ptrs.size();
    out->tokens = p->trigger_tokens.data();
    out->n_tokens = p->trigger_tokens.size();
    return true;
}

extern "C" const int32_t *pc_chat_prompt_preserved(const struct pc_chat_prompt *p, size_t *n)
{
    *n = p->preserved.size();
    return p->preserved.data();
}

extern "C" const char *const *pc_chat_prompt_stops(const struct pc_chat_prompt *p, size_t *n)
{
    *n = p->stop_ptrs.size();
    return p->stop_ptrs.data();
}

extern "C" void pc_chat_prompt_free(struct pc_chat_prompt *p)
{
    delete p;
}
