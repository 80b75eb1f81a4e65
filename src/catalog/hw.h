/* hw.h - the hardware probe: memory (a container's limit wins over the host's), CPU cores,
 * and GPU devices with their memory. */
#ifndef PC_HW_H
#define PC_HW_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define PC_HW_MAX_GPUS 8

struct pc_hw_gpu {
    char name[64];
    char description[128];
    uint64_t total;
    uint64_t free;
};

struct pc_hw {
    uint64_t host_total;     /* /proc/meminfo MemTotal */
    uint64_t host_available; /* MemAvailable */
    int cgroup_version;      /* 0 (none found), 1 or 2 */
    uint64_t cgroup_limit;   /* 0: no limit */
    uint64_t cgroup_usage;
    uint64_t ram_total;     /* what this process may use: min(host, cgroup limit) */
    uint64_t ram_available; /* min(host available, limit - usage) */
    int cpu_cores;          /* online CPUs */
    double cgroup_cpus;     /* cpu.max quota / period; 0: no quota */
    size_t n_gpus;
    struct pc_hw_gpu gpus[PC_HW_MAX_GPUS];
};

/* Probe the machine. root prefixes /proc and /sys ("" on a real machine, a fixture directory
 * in tests). GPUs come from ggml's backend devices, which pc_engine_init loads. */
/* GPUs (discrete or integrated) that llama.cpp's backends offer this process; 0 on a machine
 * where every layer runs on the CPU. No memory is read: cheap enough for a request. */
size_t pc_hw_gpu_count(void);

enum pc_err pc_hw_probe(const char *root, struct pc_hw *out /* OUT */, struct pc_error *err);

/* Parsers, public for their tests. Each returns 0, or -1 when the text is not what it expects. */
int pc_hw_parse_meminfo(const char *text, uint64_t *total /* OUT */, uint64_t *available /* OUT */);
/* A cgroup memory limit file: "max" (v2) or a huge number (v1) mean no limit (0). */
int pc_hw_parse_limit(const char *text, uint64_t *limit /* OUT */);
/* cpu.max: "max 100000" or "200000 100000". */
int pc_hw_parse_cpu_max(const char *text, double *cpus /* OUT */);

#endif
