/*
 * tickcast C example: receive one group (feeds A and B, re-requests on), print a few ticks and
 * the statistics, stop at end of session or after a time limit.
 *
 *   cc -O2 -I subscriber-sdk/include subscriber-sdk/examples/c/subscriber.c \
 *      target/release/libsubscriber_sdk.a -lpthread -ldl -lm -o tc_subscriber
 *   ./tc_subscriber 239.192.10.1:31001 239.192.11.1:31001 127.0.0.1:32001 [seconds]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tickcast.h"

struct counts {
    uint64_t messages;
    uint64_t adds;
    uint64_t last_seq;
    uint64_t out_of_order;
    uint64_t gaps;
};

/* Little-endian field readers; offsets are in docs/PROTOCOL.md. */
static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static void on_message(void *user, uint32_t group, uint64_t seq, uint8_t kind, const uint8_t *data, size_t len) {
    struct counts *c = user;
    (void)group;
    if (c->last_seq != 0 && seq != c->last_seq + 1) c->out_of_order++;
    c->last_seq = seq;
    c->messages++;
    if (len != TC_RECORD_SIZE) return;
    if (kind == TC_KIND_ORDER_ADD) {
        c->adds++;
        if (c->adds <= 3) {
            int64_t price = (int64_t)le64(data + 32);
            printf("seq %llu instrument %u add %c %u @ %lld.%04lld\n", (unsigned long long)seq, le32(data + 4),
                   data[44], le32(data + 40), (long long)(price / 100000000), (long long)(price % 100000000 / 10000));
        }
    }
}

static void on_gap(void *user, uint32_t group, uint64_t from, uint64_t to) {
    struct counts *c = user;
    c->gaps++;
    c->last_seq = to;
    printf("group %u: gap %llu..%llu lost\n", group, (unsigned long long)from, (unsigned long long)to);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FEED_A [FEED_B|-] [RETRANSMIT|-] [SECONDS]\n", argv[0]);
        return 2;
    }
    const char *b = argc > 2 && strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
    const char *r = argc > 3 && strcmp(argv[3], "-") != 0 ? argv[3] : NULL;
    double seconds = argc > 4 ? atof(argv[4]) : 10.0;

    tc_subscriber *sub = NULL;
    int rc = tc_subscriber_new(&sub);
    if (rc != TC_OK) {
        fprintf(stderr, "tc_subscriber_new: %s\n", tc_strerror(rc));
        return 1;
    }
    rc = tc_subscriber_add_group(sub, argv[1], b, "127.0.0.1", r);
    if (rc < 0) {
        fprintf(stderr, "tc_subscriber_add_group: %s\n", tc_strerror(rc));
        tc_subscriber_free(sub);
        return 1;
    }
    struct counts c = {0};
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        rc = tc_subscriber_poll(sub, 50, on_message, on_gap, &c);
        if (rc < 0) {
            fprintf(stderr, "tc_subscriber_poll: %s\n", tc_strerror(rc));
            break;
        }
        if (tc_subscriber_ended(sub) == 1) break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > seconds) break;
    }
    tc_stats st;
    tc_subscriber_stats(sub, &st);
    printf("messages %llu adds %llu out_of_order %llu gaps %llu\n", (unsigned long long)c.messages,
           (unsigned long long)c.adds, (unsigned long long)c.out_of_order, (unsigned long long)c.gaps);
    printf("stats delivered %llu duplicates %llu gaps_filled %llu gaps_lost %llu requests %llu p50_ns %llu\n",
           (unsigned long long)st.delivered, (unsigned long long)st.duplicates, (unsigned long long)st.gaps_filled,
           (unsigned long long)st.gaps_lost, (unsigned long long)st.requests, (unsigned long long)st.latency_p50_ns);
    tc_subscriber_free(sub);
    return rc < 0 ? 1 : 0;
}
