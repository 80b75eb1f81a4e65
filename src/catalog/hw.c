/* hw.c - the hardware probe: /proc/meminfo, cgroup v2 and v1 limits, CPUs, ggml's devices. */
#include "hw.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/file.h"
#include "ggml-backend.h"

/* cgroup v1 writes "no limit" as a page-aligned LONG_MAX. */
#define V1_UNLIMITED (1ull << 62)

int pc_hw_parse_meminfo(const char *text, uint64_t *total, uint64_t *available)
{
    unsigned long long kb;
    const char *p;
    *total = *available = 0;
    if ((p = strstr(text, "MemTotal:")) == NULL || sscanf(p + 9, "%llu", &kb) != 1)
        return -1;
    *total = kb * 1024;
    if ((p = strstr(text, "MemAvailable:")) != NULL && sscanf(p + 13, "%llu", &kb) == 1) {
        *available = kb * 1024;
    } else {
        /* Kernels before 3.14: free + buffers + cached is the usual stand-in. */
        unsigned long long f = 0, b = 0, c = 0;
        if ((p = strstr(text, "MemFree:")) != NULL)
            sscanf(p + 8, "%llu", &f);
        if ((p = strstr(text, "Buffers:")) != NULL)
            sscanf(p + 8, "%llu", &b);
        if ((p = strstr(text, "\nCached:")) != NULL)
            sscanf(p + 8, "%llu", &c);
        *available = (f + b + c) * 1024;
    }
    return 0;
}

int pc_hw_parse_limit(const char *text, uint64_t *limit)
{
    unsigned long long v;
    *limit = 0;
    if (strncmp(text, "max", 3) == 0)
        return 0;
    if (sscanf(text, "%llu", &v) != 1)
        return -1;
    *limit = v >= V1_UNLIMITED ? 0 : v;
    return 0;
}

int pc_hw_parse_cpu_max(const char *text, double *cpus)
{
    char quota[32];
    unsigned long long period;
    *cpus = 0;
    if (sscanf(text, "%31s %llu", quota, &period) != 2 || period == 0)
        return -1;
    if (strcmp(quota, "max") == 0)
        return 0;
    char *end;
    double q = strtod(quota, &end);
    if (*end != '\0' || q <= 0)
        return -1;
    *cpus = q / (double)period;
    return 0;
}

static char *slurp(const char *root, const char *path)
{
    char full[1024];
    char *text = NULL;
    snprintf(full, sizeof(full), "%s%s", root, path);
    if (pc_file_read(full, 1 << 20, &text, NULL, NULL) != PC_OK)
        return NULL;
    return text;
}

/* This process's cgroup path for a controller, from /proc/self/cgroup: the v2 line "0::/p",
 * or the v1 line "N:memory:/p" (controller "memory"). */
static bool cgroup_path(const char *root, const char *controller, char *out, size_t size)
{
    char *text = slurp(root, "/proc/self/cgroup");
    bool found = false;
    for (char *line = text ? strtok(text, "\n") : NULL; line && !found; line = strtok(NULL, "\n")) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        bool match = controller == NULL ? *ctrls == '\0' : strstr(ctrls, controller) != NULL;
        if (match) {
            snprintf(out, size, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
            found = true;
        }
    }
    free(text);
    return found;
}

/* The smallest limit from the cgroup up to the root: a parent's limit binds its children. */
static uint64_t walk_limit(const char *root, const char *base, const char *cg, const char *file,
                           uint64_t *usage, const char *usage_file, bool *seen)
{
    char dir[512];
    uint64_t best = 0;
    snprintf(dir, sizeof(dir), "%s", cg);
    for (;;) {
        char path[1024];
        snprintf(path, sizeof(path), "%s%s/%s", base, dir, file);
        char *text = slurp(root, path);
        uint64_t lim;
        if (text != NULL) {
            *seen = true;
            if (pc_hw_parse_limit(text, &lim) == 0 && lim > 0 && (best == 0 || lim < best)) {
                best = lim;
                snprintf(path, sizeof(path), "%s%s/%s", base, dir, usage_file);
                char *u = slurp(root, path);
                unsigned long long v;
                if (u != NULL && sscanf(u, "%llu", &v) == 1)
                    *usage = v;
                free(u);
            }
            free(text);
        }
        char *slash = strrchr(dir, '/');
        if (slash == NULL || dir[0] == '\0')
            break;
        *slash = '\0';
    }
    return best;
}

static void probe_cgroups(const char *root, struct pc_hw *hw)
{
    char cg[512];
    bool seen = false;
    if (cgroup_path(root, NULL, cg, sizeof(cg))) {
        hw->cgroup_limit = walk_limit(root, "/sys/fs/cgroup", cg, "memory.max", &hw->cgroup_usage,
                                      "memory.current", &seen);
        if (seen)
            hw->cgroup_version = 2;
        char path[1024];
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", cg);
        char *text = slurp(root, path);
        if (text != NULL)
            pc_hw_parse_cpu_max(text, &hw->cgroup_cpus);
        free(text);
    }
    if (!seen && cgroup_path(root, "memory", cg, sizeof(cg))) {
        hw->cgroup_limit = walk_limit(root, "/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes",
                                      &hw->cgroup_usage, "memory.usage_in_bytes", &seen);
        if (seen)
            hw->cgroup_version = 1;
    }
}

static bool is_gpu(ggml_backend_dev_t dev)
{
    enum ggml_backend_dev_type t = ggml_backend_dev_type(dev);
    return t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU;
}

size_t pc_hw_gpu_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++)
        n += is_gpu(ggml_backend_dev_get(i));
    return n;
}

static void probe_gpus(struct pc_hw *hw)
{
    for (size_t i = 0; i < ggml_backend_dev_count() && hw->n_gpus < PC_HW_MAX_GPUS; i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (!is_gpu(dev))
            continue;
        struct pc_hw_gpu *g = &hw->gpus[hw->n_gpus++];
        size_t free_b = 0, total_b = 0;
        ggml_backend_dev_memory(dev, &free_b, &total_b);
        snprintf(g->name, sizeof(g->name), "%s", ggml_backend_dev_name(dev));
        snprintf(g->description, sizeof(g->description), "%s", ggml_backend_dev_description(dev));
        g->total = total_b;
        g->free = free_b;
    }
}

enum pc_err pc_hw_probe(const char *root, struct pc_hw *out, struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    char *text = slurp(root, "/proc/meminfo");
    if (text == NULL || pc_hw_parse_meminfo(text, &out->host_total, &out->host_available) != 0) {
        free(text);
        return pc_error_set(err, PC_ERR_IO, "cannot read the memory size from %s/proc/meminfo",
                            root);
    }
    free(text);
    probe_cgroups(root, out);

    out->ram_total = out->host_total;
    out->ram_available = out->host_available;
    if (out->cgroup_limit > 0) {
        if (out->cgroup_limit < out->ram_total)
            out->ram_total = out->cgroup_limit;
        uint64_t left =
            out->cgroup_limit > out->cgroup_usage ? out->cgroup_limit - out->cgroup_usage : 0;
        if (left < out->ram_available)
            out->ram_available = left;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->cpu_cores = n > 0 ? (int)n : 1;
    if (root[0] == '\0')
        probe_gpus(out);
    return PC_OK;
}
