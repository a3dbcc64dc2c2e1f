/* bench_codecs: what each serializer costs for one sensor reading (a
 * demo.Reading of eight fields, tests/proto/sensor.proto), encode and decode
 * through lz_serializer_encode / lz_serializer_decode, next to protobuf-c
 * packing and unpacking the generated struct itself (the floor under the
 * protobuf codec's value mapping). Rounds interleave the codecs; each cell
 * is the median of the rounds. Usage: bench_codecs [iterations] [rounds]. */
#include <liberzmq.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sensor.pb-c.h"

#define MAX_ROUNDS 15

static const char reading_json[] = "{\"sensor_id\":\"greenhouse-7\",\"value\":21.5,\"level\":3,\"count\":1234567,"
                                   "\"ok\":true,\"unit\":\"CELSIUS\",\"where\":{\"lat\":48.1,\"lon\":11.5},"
                                   "\"samples\":[20,21,22,21]}";

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct cell {
    const char *name;
    const lz_serializer_t *codec; // NULL: protobuf-c on the generated struct
    double encode[MAX_ROUNDS], decode[MAX_ROUNDS];
    size_t size;
} cell_t;

// time_codec runs one round of n encodes and n decodes; ns per operation.
static int time_codec(cell_t *c, const lz_value_t *value, long n, int round) {
    lz_buffer_t *buf = lz_buffer_new();
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        lz_buffer_reset(buf);
        if (lz_serializer_encode(c->codec, value, buf) != LZ_OK) return -1;
    }
    double t1 = now_ns();
    for (long i = 0; i < n; i++) {
        lz_value_t *back = NULL;
        if (lz_serializer_decode(c->codec, lz_buffer_data(buf), lz_buffer_size(buf), &back) != LZ_OK) return -1;
        lz_value_destroy(&back);
    }
    double t2 = now_ns();
    c->size = lz_buffer_size(buf);
    c->encode[round] = (t1 - t0) / (double)n;
    c->decode[round] = (t2 - t1) / (double)n;
    lz_buffer_destroy(&buf);
    return 0;
}

// time_generated: protobuf-c alone, packing a filled struct and unpacking it.
static int time_generated(cell_t *c, long n, int round) {
    Demo__Location where = DEMO__LOCATION__INIT;
    where.lat = 48.1, where.lon = 11.5;
    int32_t samples[] = {20, 21, 22, 21};
    Demo__Reading r = DEMO__READING__INIT;
    r.sensor_id = "greenhouse-7", r.value = 21.5, r.level = 3, r.count = 1234567, r.ok = 1;
    r.unit = DEMO__UNIT__CELSIUS, r.where = &where, r.n_samples = 4, r.samples = samples;
    uint8_t out[256];
    size_t size = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) size = demo__reading__pack(&r, out);
    double t1 = now_ns();
    for (long i = 0; i < n; i++) {
        Demo__Reading *back = demo__reading__unpack(NULL, size, out);
        if (!back) return -1;
        demo__reading__free_unpacked(back, NULL);
    }
    double t2 = now_ns();
    c->size = size;
    c->encode[round] = (t1 - t0) / (double)n;
    c->decode[round] = (t2 - t1) / (double)n;
    return 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: bench_codecs [iterations] [rounds (1..%d)]\n", MAX_ROUNDS);
        return 2;
    }
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx || lz_protobuf_register(ctx, "reading", &demo__reading__descriptor, 0) != LZ_OK) {
        fprintf(stderr, "bench_codecs: %s\n", lz_last_error());
        return 1;
    }
    lz_value_t *value = lz_value_from_json(reading_json, strlen(reading_json));
    cell_t cells[] = {
        {.name = "json", .codec = lz_serializer_find(ctx, "json")},
        {.name = "msgpack", .codec = lz_serializer_find(ctx, "msgpack")},
        {.name = "protobuf (values)", .codec = lz_serializer_find(ctx, "reading")},
        {.name = "protobuf-c (struct)", .codec = NULL},
    };
    size_t count = sizeof cells / sizeof cells[0];
    for (int round = 0; round < rounds; round++) {
        for (size_t i = 0; i < count; i++) {
            int rc = cells[i].codec ? time_codec(&cells[i], value, n, round) : time_generated(&cells[i], n, round);
            if (rc) {
                fprintf(stderr, "bench_codecs: %s failed: %s\n", cells[i].name, lz_last_error());
                return 1;
            }
        }
    }
    printf("one demo.Reading, %ld operations x %d rounds, median ns per operation\n", n, rounds);
    printf("%-20s %6s %10s %10s\n", "codec", "bytes", "encode", "decode");
    for (size_t i = 0; i < count; i++)
        printf("%-20s %6zu %10.0f %10.0f\n", cells[i].name, cells[i].size, median(cells[i].encode, rounds),
               median(cells[i].decode, rounds));
    lz_value_destroy(&value);
    lz_context_destroy(&ctx);
    return 0;
}
