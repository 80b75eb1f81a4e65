/* ggufset.h - change header keys of a GGUF ("KEY=TYPE:VALUE"): mkmodel's --set, and the tests
 * and fuzz target that give llama.cpp's loader hostile header values. Header-only: it needs
 * nothing but gguf.h. */
#ifndef PC_GGUFSET_H
#define PC_GGUFSET_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

/* Set one key of g from spec, "KEY=TYPE:VALUE", TYPE one of u8 i8 u16 i16 u32 i32 u64 i64 f32
 * f64 bool str (a float also takes "nan", "inf", "-inf"). A key that is there already is
 * replaced, whatever its type. Returns 0, or -1 with why (may be NULL) saying what is wrong. */
static inline int ggufset_apply(struct gguf_context *g, const char *spec, char *why, size_t size)
{
    char key[256], type[8];
    const char *eq = strchr(spec, '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (eq == NULL || colon == NULL || eq == spec || (size_t)(eq - spec) >= sizeof(key) ||
        (size_t)(colon - eq - 1) >= sizeof(type)) {
        if (why)
            snprintf(why, size, "\"%.64s\": not KEY=TYPE:VALUE", spec);
        return -1;
    }
    memcpy(key, spec, (size_t)(eq - spec));
    key[eq - spec] = '\0';
    memcpy(type, eq + 1, (size_t)(colon - eq - 1));
    type[colon - eq - 1] = '\0';
    const char *v = colon + 1;
    char *end = NULL;
    errno = 0;
    if (strcmp(type, "str") == 0) {
        gguf_set_val_str(g, key, v);
        return 0;
    }
    if (strcmp(type, "bool") == 0 && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
        gguf_set_val_bool(g, key, v[0] == 't');
        return 0;
    }
    if (strcmp(type, "f32") == 0 || strcmp(type, "f64") == 0) {
        double d = strtod(v, &end);
        if (end != v && *end == '\0') {
            if (type[1] == '3')
                gguf_set_val_f32(g, key, (float)d);
            else
                gguf_set_val_f64(g, key, d);
            return 0;
        }
    } else if (type[0] == 'u' && v[0] != '-') {
        unsigned long long n = strtoull(v, &end, 0);
        if (end != v && *end == '\0' && errno == 0) {
            if (strcmp(type, "u8") == 0 && n <= UINT8_MAX)
                return gguf_set_val_u8(g, key, (uint8_t)n), 0;
            if (strcmp(type, "u16") == 0 && n <= UINT16_MAX)
                return gguf_set_val_u16(g, key, (uint16_t)n), 0;
            if (strcmp(type, "u32") == 0 && n <= UINT32_MAX)
                return gguf_set_val_u32(g, key, (uint32_t)n), 0;
            if (strcmp(type, "u64") == 0)
                return gguf_set_val_u64(g, key, (uint64_t)n), 0;
        }
    } else if (type[0] == 'i') {
        long long n = strtoll(v, &end, 0);
        if (end != v && *end == '\0' && errno == 0) {
            if (strcmp(type, "i8") == 0 && n >= INT8_MIN && n <= INT8_MAX)
                return gguf_set_val_i8(g, key, (int8_t)n), 0;
            if (strcmp(type, "i16") == 0 && n >= INT16_MIN && n <= INT16_MAX)
                return gguf_set_val_i16(g, key, (int16_t)n), 0;
            if (strcmp(type, "i32") == 0 && n >= INT32_MIN && n <= INT32_MAX)
                return gguf_set_val_i32(g, key, (int32_t)n), 0;
            if (strcmp(type, "i64") == 0)
                return gguf_set_val_i64(g, key, (int64_t)n), 0;
        }
    }
    if (why)
        snprintf(why, size, "\"%.64s\": no %s value \"%.32s\"", spec, type, v);
    return -1;
}

/* Write dst as a copy of the GGUF src with each of specs applied to its header; the tensor data
 * is copied as it is. dst is written in place (tests and fuzzing: no reader waits on it).
 * Returns 0, or -1 with why saying what failed. */
static inline int ggufset_copy(const char *src, const char *dst, const char *const *specs,
                               size_t n_specs, char *why, size_t size)
{
    struct gguf_init_params gp = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *g = gguf_init_from_file(src, gp);
    FILE *in = NULL, *out = NULL;
    void *meta = NULL;
    int rc = -1;
    if (g == NULL) {
        snprintf(why, size, "%.200s: not a GGUF file", src);
        return -1;
    }
    for (size_t i = 0; i < n_specs; i++)
        if (ggufset_apply(g, specs[i], why, size) != 0)
            goto out;
    size_t meta_size = gguf_get_meta_size(g);
    if ((meta = malloc(meta_size)) == NULL) {
        snprintf(why, size, "out of memory");
        goto out;
    }
    gguf_get_meta_data(g, meta);
    in = fopen(src, "rb");
    out = fopen(dst, "wb");
    if (in == NULL || out == NULL || fseek(in, (long)gguf_get_data_offset(g), SEEK_SET) != 0 ||
        fwrite(meta, 1, meta_size, out) != meta_size) {
        snprintf(why, size, "%.100s -> %.100s: %s", src, dst, strerror(errno));
        goto out;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n) {
            snprintf(why, size, "%.200s: %s", dst, strerror(errno));
            goto out;
        }
    rc = ferror(in) ? -1 : 0;
    if (rc != 0)
        snprintf(why, size, "%.200s: read error", src);
out:
    if (in)
        fclose(in);
    if (out && fclose(out) != 0 && rc == 0) {
        snprintf(why, size, "%.200s: %s", dst, strerror(errno));
        rc = -1;
    }
    free(meta);
    gguf_free(g);
    return rc;
}

#endif
