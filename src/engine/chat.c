/* chat.c - chat templates and tokenization: the text and tokens a model sees. */
#include "engineInt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pc_err pc_chat_render(const struct pc_model *m, const struct pc_chat_input *in,
                           struct pc_chat_prompt **out, struct pc_error *err)
{
    enum pc_err rc = pc_chat_tmpl_render(m->chat, m->vocab, in, out, err);
    struct pc_chat_grammar g;
    if (rc != PC_OK || !pc_chat_prompt_grammar(*out, &g))
        return rc;
    /* Made here once, so that a grammar the sampler cannot start is this request's error with
     * its reason, before any generation. */
    struct llama_sampler *s = pc_chat_grammar_sampler(m->vocab, &g);
    if (s != NULL) {
        llama_sampler_free(s);
        return PC_OK;
    }
    pc_chat_prompt_free(*out);
    *out = NULL;
    return pc_error_set(err, PC_ERR_TEMPLATE,
                        "the grammar of this chat (its schema or tools) does not parse, or does "
                        "not take the end of the model's own prompt");
}

void pc_model_chat_caps(const struct pc_model *m, struct pc_chat_caps *out)
{
    pc_chat_tmpl_caps(m->chat, out);
}

/* The text of in rendered. *out is malloc'd. */
static enum pc_err render_text(const struct pc_model *m, const struct pc_chat_input *in, char **out,
                               struct pc_error *err)
{
    struct pc_chat_prompt *p = NULL;
    *out = NULL;
    enum pc_err rc = pc_chat_render(m, in, &p, err);
    if (rc != PC_OK)
        return rc;
    *out = strdup(pc_chat_prompt_text(p));
    pc_chat_prompt_free(p);
    return *out ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "chat template: out of memory");
}

enum pc_err pc_model_render_chat(const struct pc_model *m, const struct pc_chat_msg *msgs,
                                 size_t n_msgs, bool add_assistant, char **out,
                                 struct pc_error *err)
{
    struct pc_chat_input in = {.msgs = msgs, .n_msgs = n_msgs, .add_assistant = add_assistant};
    return render_text(m, &in, out, err);
}

static enum pc_err tokenize(const struct pc_model *m, const char *text, bool add_special,
                            int32_t **out, size_t *n_out, struct pc_error *err)
{
    *out = NULL;
    *n_out = 0;
    size_t len = strlen(text);
    if (len > INT32_MAX / 2)
        return pc_error_set(err, PC_ERR_TOO_LARGE, "prompt of %zu bytes is too long", len);

    /* A token is at least one byte, plus BOS/EOS. */
    int32_t cap = (int32_t)len + 8;
    llama_token *toks = malloc((size_t)cap * sizeof(*toks));
    if (toks == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "tokenize: out of memory");
    int32_t n = llama_tokenize(m->vocab, text, (int32_t)len, toks, cap, add_special, true);
    if (n < 0) {
        free(toks);
        return pc_error_set(err, PC_ERR_TOKENIZE, "the prompt could not be tokenized");
    }
    *out = toks;
    *n_out = (size_t)n;
    return PC_OK;
}

bool pc_model_adds_bos(const struct pc_model *m)
{
    return llama_vocab_get_add_bos(m->vocab);
}

enum pc_err pc_model_tokenize(const struct pc_model *m, const char *text, int32_t **out,
                              size_t *n_out, struct pc_error *err)
{
    return tokenize(m, text, true, out, n_out, err);
}

enum pc_err pc_model_tokenize_more(const struct pc_model *m, const char *text, int32_t **out,
                                   size_t *n_out, struct pc_error *err)
{
    return tokenize(m, text, false, out, n_out, err);
}

enum pc_err pc_model_prefix_tokens(const struct pc_model *m, const struct pc_chat_input *in,
                                   int32_t **out, size_t *n_out, struct pc_error *err)
{
    const struct pc_chat_msg *msgs = in->msgs;
    size_t n_msgs = in->n_msgs;
    char *alone = NULL, *followed = NULL;
    int32_t *ta = NULL, *tb = NULL;
    size_t na = 0, nb = 0;
    *out = NULL;
    *n_out = 0;

    struct pc_chat_msg *more = calloc(n_msgs + 1, sizeof(*more));
    if (more == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    memcpy(more, msgs, n_msgs * sizeof(*msgs));
    more[n_msgs] = (struct pc_chat_msg){.role = "user", .content = "?"};
    struct pc_chat_input a = *in, b = *in;
    a.add_assistant = false;
    b.msgs = more;
    b.n_msgs = n_msgs + 1;
    b.add_assistant = true;
    enum pc_err rc = render_text(m, &a, &alone, err);
    if (rc == PC_OK)
        rc = render_text(m, &b, &followed, err);
    if (rc == PC_OK)
        rc = pc_model_tokenize(m, alone, &ta, &na, err);
    if (rc == PC_OK)
        rc = pc_model_tokenize(m, followed, &tb, &nb, err);
    if (rc == PC_OK) {
        size_t k = 0;
        while (k < na && k < nb && ta[k] == tb[k])
            k++;
        *out = ta;
        *n_out = k;
        ta = NULL;
    }
    free(more);
    free(alone);
    free(followed);
    free(ta);
    free(tb);
    return rc;
}

/* A special token's text, as tokenizing parses it back; false when it has none. */
static bool special_text(const struct pc_model *m, llama_token tok, char *out, size_t size)
{
    if (tok == LLAMA_TOKEN_NULL)
        return false;
    int32_t n = llama_token_to_piece(m->vocab, tok, out, (int32_t)size - 1, 0, true);
    if (n <= 0)
        return false;
    out[n] = '\0';
    return true;
}

enum pc_err pc_model_fim_prompt(const struct pc_model *m, const char *model, const char *prefix,
                                const char *suffix, char **out, struct pc_error *err)
{
    char pre[64], suf[64], mid[64];
    if (!special_text(m, llama_vocab_fim_pre(m->vocab), pre, sizeof(pre)) ||
        !special_text(m, llama_vocab_fim_suf(m->vocab), suf, sizeof(suf)) ||
        !special_text(m, llama_vocab_fim_mid(m->vocab), mid, sizeof(mid)))
        return pc_error_set(err, PC_ERR_INVALID,
                            "field \"suffix\": model \"%s\" does not support insert: its "
                            "vocabulary has no fill-in-the-middle tokens",
                            model);
    size_t n = strlen(pre) + strlen(prefix) + strlen(suf) + strlen(suffix) + strlen(mid) + 1;
    *out = malloc(n);
    if (*out == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    snprintf(*out, n, "%s%s%s%s%s", pre, prefix, suf, suffix, mid);
    return PC_OK;
}

size_t pc_model_token_text(const struct pc_model *m, int32_t token, char *out, size_t size)
{
    int32_t n = llama_token_to_piece(m->vocab, token, out, (int32_t)size - 1, 0, true);
    n = n < 0 ? 0 : n;
    out[n] = '\0';
    return (size_t)n;
}
