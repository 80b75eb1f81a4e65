/* bench_attention.c - what new tokens cost after a cached context, straight through llama.cpp.
 *
 * The floor under a precharged request: a batch of Q new tokens decoded after a C-token context
 * that is already in the cache, against the same batch with nothing before it, with flash
 * attention off and on. No precharge code runs here (llama.h, and pc_engine_init for the
 * backends), so bench_precharge's "prefill of the new tokens" can be checked against it. Each
 * figure is the best of --rounds, the cases interleaved, in one process.
 *
 *   build/bin/bench_attention MODEL.gguf [--threads N] [--context C] [--new Q] [--rounds R]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llama.h>

#include "base/clock.h"
#include "engine/engine.h"

/* Decode n tokens at positions pos0.. in sequence 0, in batches of up to n_batch; ms taken. */
static double decode(struct llama_context *ctx, int pos0, int n, int n_batch)
{
    int64_t t0 = pc_clock_mono_ns();
    struct llama_batch b = llama_batch_init(n_batch, 0, 1);
    for (int i = 0; i < n; i += n_batch) {
        int k = n - i < n_batch ? n - i : n_batch;
        for (int j = 0; j < k; j++) {
            b.token[j] = 100 + ((i + j) * 37) % 3000;
            b.pos[j] = pos0 + i + j;
            b.n_seq_id[j] = 1;
            b.seq_id[j][0] = 0;
            b.logits[j] = i + j == n - 1;
        }
        b.n_tokens = k;
        if (llama_decode(ctx, b) != 0) {
            fprintf(stderr, "bench_attention: llama_decode failed\n");
            exit(1);
        }
    }
    llama_synchronize(ctx);
    llama_batch_free(b);
    return (double)(pc_clock_mono_ns() - t0) / 1e6;
}

static double min(double a, double b)
{
    return a < b ? a : b;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_attention MODEL.gguf [--threads N] [--context C] "
                        "[--new Q] [--rounds R]\n");
        return 2;
    }
    int threads = 2, n_ctx_tokens = 1067, n_new = 32, rounds = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--context") == 0)
            n_ctx_tokens = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--new") == 0)
            n_new = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
    }
    pc_engine_init(NULL, "none"); /* the backends, as the daemon loads them */
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (model == NULL) {
        fprintf(stderr, "bench_attention: cannot load %s\n", argv[1]);
        return 1;
    }

    enum { N_CASES = 2 };
    static const char *const names[N_CASES] = {"flash attention off", "flash attention on"};
    struct llama_context *ctx[N_CASES];
    double alone[N_CASES], after[N_CASES], full[N_CASES], step[N_CASES];
    for (int c = 0; c < N_CASES; c++) {
        /* The daemon's shape: one unified cache for 8 sequences, batches of 512. */
        struct llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 4096;
        cp.n_batch = cp.n_ubatch = 512;
        cp.n_seq_max = 8;
        cp.kv_unified = true;
        cp.n_threads = cp.n_threads_batch = threads;
        cp.flash_attn_type = c ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        if ((ctx[c] = llama_init_from_model(model, cp)) == NULL) {
            fprintf(stderr, "bench_attention: cannot make a context\n");
            return 1;
        }
        decode(ctx[c], 0, n_new, 512); /* the first decode sizes the compute buffers */
        alone[c] = after[c] = full[c] = step[c] = 1e30;
    }
    for (int r = 0; r < rounds; r++) {
        for (int c = 0; c < N_CASES; c++) {
            llama_memory_t mem = llama_get_memory(ctx[c]);
            llama_memory_clear(mem, true);
            alone[c] = min(alone[c], decode(ctx[c], 0, n_new, 512));
            llama_memory_clear(mem, true);
            full[c] = min(full[c], decode(ctx[c], 0, n_ctx_tokens, 512));
            after[c] = min(after[c], decode(ctx[c], n_ctx_tokens, n_new, 512));
            step[c] = min(step[c], decode(ctx[c], n_ctx_tokens + n_new, 1, 1));
        }
    }
    printf("model %s, %d threads, best of %d rounds\n", argv[1], threads, rounds);
    printf("%-20s %9s %12s %9s %13s %13s\n", "", "new alone", "new after", "after /", "context",
           "decode step");
    for (int c = 0; c < N_CASES; c++) {
        printf("%-20s %6.0f ms %9.0f ms %8.2fx %10.0f ms %10.1f ms\n", names[c], alone[c], after[c],
               after[c] / alone[c], full[c], step[c]);
        llama_free(ctx[c]);
    }
    printf("(new: %d tokens; context: %d tokens, prefilled whole; decode step: one token after "
           "both)\n",
           n_new, n_ctx_tokens);
    llama_model_free(model);
    return 0;
}
