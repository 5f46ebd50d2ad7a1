/*
 * tickcast C example over TCP: log in to the SoupBinTCP server from a sequence number, print
 * a few ticks and the count, stop at end of session or after a time limit.
 *
 *   cc -O2 -I subscriber-sdk/include subscriber-sdk/examples/c/tcp_subscriber.c \
 *      target/release/libsubscriber_sdk.a -lpthread -ldl -lm -o tc_tcp_subscriber
 *   ./tc_tcp_subscriber 127.0.0.1:7000 SESSION [FROM] [SECONDS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tickcast.h"

struct counts {
    uint64_t messages;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t out_of_order;
};

static void on_message(void *user, uint32_t group, uint64_t seq, uint8_t kind, const uint8_t *data, size_t len) {
    struct counts *c = user;
    (void)group;
    (void)data;
    if (c->messages == 0) c->first_seq = seq;
    if (c->last_seq != 0 && seq != c->last_seq + 1) c->out_of_order++;
    c->last_seq = seq;
    c->messages++;
    if (c->messages <= 3) printf("seq %llu kind %u len %zu\n", (unsigned long long)seq, kind, len);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST:PORT SESSION [FROM] [SECONDS]\n", argv[0]);
        return 2;
    }
    uint64_t from = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    double seconds = argc > 4 ? atof(argv[4]) : 10.0;
    tc_tcp_subscriber *sub = NULL;
    int rc = tc_tcp_subscriber_new(argv[1], argv[2], from, NULL, NULL, &sub);
    if (rc != TC_OK) {
        fprintf(stderr, "tc_tcp_subscriber_new: %s\n", tc_strerror(rc));
        return 1;
    }
    printf("logged in, next sequence %llu\n", (unsigned long long)tc_tcp_subscriber_next_seq(sub));
    struct counts c = {0};
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        rc = tc_tcp_subscriber_poll(sub, 50, on_message, &c);
        if (rc < 0) {
            fprintf(stderr, "tc_tcp_subscriber_poll: %s\n", tc_strerror(rc));
            break;
        }
        if (tc_tcp_subscriber_ended(sub) == 1) break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > seconds) break;
    }
    printf("messages %llu first %llu last %llu out_of_order %llu ended %d\n", (unsigned long long)c.messages,
           (unsigned long long)c.first_seq, (unsigned long long)c.last_seq, (unsigned long long)c.out_of_order,
           tc_tcp_subscriber_ended(sub));
    tc_tcp_subscriber_free(sub);
    return rc < 0 ? 1 : 0;
}
