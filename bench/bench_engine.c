/* bench_engine.c - load time (cold and warm file cache), prefill and generation speed, and the
 * time to first token with and without a cached prefix, measured side by side in one run.
 *
 *   build/bin/bench_engine MODEL.gguf [--threads N] [--prompt-tokens N] [--gen-tokens N]
 *                                     [--no-repack]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "engine/engine.h"

/* Drop the file's pages from the page cache, so that the next load reads the disk. */
static void evict_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static struct pc_model *load(const char *path, const struct pc_model_params *p)
{
    struct pc_model *m = NULL;
    struct pc_error err = {0};
    if (pc_model_load(path, p, &m, &err) != PC_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        exit(1);
    }
    return m;
}

/* Run one generation; returns its stats and the time to its first token in *ttft_ns. */
static struct pc_gen_stats run(struct pc_model *m, const char *prompt, int n_gen, int64_t *ttft_ns)
{
    struct pc_gen_request req = {.prompt = prompt, .sampling = pc_sampling_default()};
    req.sampling.temperature = 0;
    req.sampling.num_predict = n_gen;
    struct pc_gen *g = NULL;
    struct pc_error err = {0};
    int64_t t0 = pc_clock_mono_ns();
    if (pc_gen_start(m, &req, &g, &err) != PC_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        exit(1);
    }
    bool first = true;
    for (;;) {
        const char *text;
        size_t len;
        bool done;
        if (pc_gen_next(g, &text, &len, &done, &err) != PC_OK) {
            fprintf(stderr, "bench_engine: %s\n", err.msg);
            exit(1);
        }
        if (first && ttft_ns)
            *ttft_ns = pc_clock_mono_ns() - t0;
        first = false;
        if (done)
            break;
    }
    struct pc_gen_stats st = *pc_gen_stats(g);
    pc_gen_free(g);
    return st;
}

/* A system prompt of about n tokens, like a form schema. */
static char *system_prompt(struct pc_model *m, int n)
{
    struct pc_buf b = PC_BUF_INIT;
    pc_buf_appends(&b, "You are a form assistant. The form has these fields:");
    for (int i = 0;; i++) {
        int32_t *toks = NULL;
        size_t nt = 0;
        pc_model_tokenize(m, b.data, &toks, &nt, NULL);
        free(toks);
        if ((int)nt >= n)
            break;
        pc_buf_printf(&b, " field_%d (text, required, at most %d characters);", i, 20 + i % 50);
    }
    return pc_buf_steal(&b);
}

static char *render(struct pc_model *m, const char *sys, const char *user)
{
    struct pc_chat_msg msgs[] = {{.role = "system", .content = sys},
                                 {.role = "user", .content = user}};
    char *out = NULL;
    struct pc_error err = {0};
    if (pc_model_render_chat(m, msgs, 2, true, &out, &err) != PC_OK) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        exit(1);
    }
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_engine MODEL.gguf [--threads N] [--prompt-tokens N] "
                        "[--gen-tokens N] [--no-repack]\n");
        return 2;
    }
    const char *path = argv[1];
    struct pc_model_params p = pc_model_default_params();
    int n_prompt = 1000, n_gen = 64;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            p.n_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--prompt-tokens") == 0 && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (strcmp(argv[i], "--gen-tokens") == 0 && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-repack") == 0)
            p.repack = false;
    }
    pc_engine_init(NULL, "none");

    evict_file(path);
    struct pc_model *m = load(path, &p);
    int64_t cold_ns = pc_model_info(m)->load_ns;
    pc_model_free(m);
    m = load(path, &p);
    const struct pc_model_info *in = pc_model_info(m);
    int64_t warm_ns = in->load_ns;

    char *sys = system_prompt(m, n_prompt);
    char *q1 = render(m, sys, "Which fields are required?");
    char *q2 = render(m, sys, "What is the longest field allowed to be?");

    /* Cold: a prompt that the cache has never seen. */
    int64_t ttft_cold = 0, ttft_warm = 0;
    struct pc_gen_stats cold = run(m, q1, n_gen, &ttft_cold);
    /* Precharged: the same system prompt, a new question. */
    struct pc_gen_stats warm = run(m, q2, 1, &ttft_warm);

    double prefill_tps = (cold.prompt_tokens - cold.cached_tokens) * 1e9 / (double)cold.prompt_ns;
    double gen_tps = cold.eval_tokens * 1e9 / (double)cold.eval_ns;

    printf("model            %s (%s, %s, %s)\n", path, in->arch, in->parameter_size,
           in->quantization);
    printf("threads          %ld, repack %s, n_ctx %u\n",
           p.n_threads ? (long)p.n_threads : sysconf(_SC_NPROCESSORS_ONLN), p.repack ? "on" : "off",
           in->n_ctx);
    printf("memory           weights %.1f MiB, KV %.1f MiB, compute %.1f MiB\n",
           (double)in->weights_bytes / 1048576.0, (double)in->kv_bytes / 1048576.0,
           (double)in->compute_bytes / 1048576.0);
    printf("load             cold cache %.0f ms, warm cache %.0f ms (cold/warm %.1fx)\n",
           (double)cold_ns / 1e6, (double)warm_ns / 1e6, (double)cold_ns / (double)warm_ns);
    printf("prefill          %d tokens in %.0f ms: %.1f tokens/s\n", cold.prompt_tokens,
           (double)cold.prompt_ns / 1e6, prefill_tps);
    printf("generation       %d tokens in %.0f ms: %.1f tokens/s\n", cold.eval_tokens,
           (double)cold.eval_ns / 1e6, gen_tps);
    printf("first token      cold prompt %.0f ms, cached prefix (%d of %d tokens) %.0f ms: "
           "%.1fx faster\n",
           (double)ttft_cold / 1e6, warm.cached_tokens, warm.prompt_tokens, (double)ttft_warm / 1e6,
           (double)ttft_cold / (double)ttft_warm);
    free(sys);
    free(q1);
    free(q2);
    pc_model_free(m);
    return 0;
}
