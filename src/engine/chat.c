/* chat.c - chat templates and tokenization: the text and tokens a model sees. */
#include "engineInt.h"

#include <stdlib.h>
#include <string.h>

/* Render with one template name or text. Returns the length, or -1 if llama.cpp does not
 * know the template. *out is malloc'd on success. */
static int32_t apply_template(const char *tmpl, const struct llama_chat_message *chat, size_t n,
                              bool add_ass, char **out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(chat[i].content) + strlen(chat[i].role);
    size_t cap = total * 2 + 256;
    if (cap > INT32_MAX)
        return -2;

    *out = NULL;
    for (int pass = 0; pass < 2; pass++) {
        char *buf = malloc(cap);
        if (buf == NULL)
            return -2;
        int32_t len = llama_chat_apply_template(tmpl, chat, n, add_ass, buf, (int32_t)cap);
        if (len < 0) {
            free(buf);
            return -1;
        }
        if ((size_t)len < cap) {
            buf[len] = '\0';
            *out = buf;
            return len;
        }
        free(buf);
        cap = (size_t)len + 1;
    }
    return -2;
}

enum pc_err pc_model_render_chat(const struct pc_model *m, const struct pc_chat_msg *msgs,
                                 size_t n_msgs, bool add_assistant, char **out,
                                 struct pc_error *err)
{
    *out = NULL;
    struct llama_chat_message *chat = calloc(n_msgs ? n_msgs : 1, sizeof(*chat));
    if (chat == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "chat template: out of memory");
    for (size_t i = 0; i < n_msgs; i++) {
        chat[i].role = msgs[i].role;
        chat[i].content = msgs[i].content;
    }

    int32_t len = -1;
    if (m->chat_template != NULL)
        len = apply_template(m->chat_template, chat, n_msgs, add_assistant, out);
    /* No template, or one llama.cpp cannot apply: ChatML, as llama-server falls back to. */
    if (len == -1)
        len = apply_template("chatml", chat, n_msgs, add_assistant, out);
    free(chat);
    if (len < 0)
        return pc_error_set(err, len == -2 ? PC_ERR_NOMEM : PC_ERR_TEMPLATE,
                            "the chat template of \"%s\" could not be applied", m->path);
    return PC_OK;
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

enum pc_err pc_model_prefix_tokens(const struct pc_model *m, const struct pc_chat_msg *msgs,
                                   size_t n_msgs, int32_t **out, size_t *n_out,
                                   struct pc_error *err)
{
    char *alone = NULL, *followed = NULL;
    int32_t *ta = NULL, *tb = NULL;
    size_t na = 0, nb = 0;
    *out = NULL;
    *n_out = 0;

    struct pc_chat_msg *more = calloc(n_msgs + 1, sizeof(*more));
    if (more == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "out of memory");
    memcpy(more, msgs, n_msgs * sizeof(*msgs));
    more[n_msgs] = (struct pc_chat_msg){"user", "?"};
    enum pc_err rc = pc_model_render_chat(m, msgs, n_msgs, false, &alone, err);
    if (rc == PC_OK)
        rc = pc_model_render_chat(m, more, n_msgs + 1, true, &followed, err);
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
