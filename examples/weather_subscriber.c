/* Weather subscriber: the ZeroMQ guide's wuclient, with liberzmq.
 *
 * Connects to weather_publisher, subscribes to the topics given (prefixes:
 * "weather." takes every city), prints each reading as it arrives from a
 * handler, and after `count` readings prints the average temperature and
 * the subscriber's metrics.
 *
 *   usage: weather_subscriber [endpoint] [count] [topic...]
 *          endpoint  default tcp://127.0.0.1:5556
 *          count     readings to receive (default 10)
 *          topic     default: weather.beijing weather.shanghai
 *          an empty argument ("") takes the default
 */
#define _POSIX_C_SOURCE 200809L

#include <liberzmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "args.h"

// What the handlers share with main. Handlers may run on several threads
// at once (zmq.handler_max_concurrency), hence the lock.
typedef struct tally {
    pthread_mutex_t lock;
    pthread_cond_t done; // signalled when `wanted` readings are in
    long wanted;
    long received;
    double temperature_sum;
} tally_t;

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int signo) {
    (void)signo;
    interrupted = 1;
}

// on_weather runs for every message whose topic matches a subscription.
// The message is borrowed: read it here, do not keep it.
static int on_weather(const lz_message_t *msg, void *arg) {
    tally_t *tally = arg;
    const lz_value_t *reading = lz_message_value(msg);
    // A non-zero return counts in the node's `errors` metric and is logged.
    if (lz_value_type(reading) != LZ_VALUE_OBJECT) return -1;

    pthread_mutex_lock(&tally->lock);
    if (tally->received < tally->wanted) { // readings past the count are ignored
        double temperature = lz_value_find_double(reading, "temperature", 0.0);
        tally->received++;
        tally->temperature_sum += temperature;
        printf("[%3ld] %-9s #%-4lld %5.1f °C  %2lld %% humidity  (topic %s)\n", tally->received,
               lz_value_find_string(reading, "city", "?"), (long long)lz_value_find_int(reading, "seq", 0),
               temperature, (long long)lz_value_find_int(reading, "humidity", 0), lz_message_topic(msg));
        fflush(stdout);
        if (tally->received == tally->wanted) pthread_cond_signal(&tally->done);
    }
    pthread_mutex_unlock(&tally->lock);
    return 0;
}

// wait_for_readings blocks until the tally is complete or Ctrl-C; it wakes
// up now and then because a signal does not interrupt a condition wait.
static void wait_for_readings(tally_t *tally) {
    pthread_mutex_lock(&tally->lock);
    while (tally->received < tally->wanted && !interrupted) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 200 * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&tally->done, &tally->lock, &deadline);
    }
    pthread_mutex_unlock(&tally->lock);
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://127.0.0.1:5556";
    long count = argc > 2 ? arg_integer("weather_subscriber", "count", argv[2], 1, LONG_MAX) : 10;
    static const char *default_topics[] = {"weather.beijing", "weather.shanghai"};
    const char **topics = argc > 3 ? (const char **)argv + 3 : default_topics;
    int topic_count = argc > 3 ? argc - 3 : 2;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tally_t tally = {.wanted = count};
    pthread_mutex_init(&tally.lock, NULL);
    pthread_cond_init(&tally.done, NULL);

    int status = EXIT_FAILURE;
    lz_sub_t *sub = NULL;
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lz_last_error());
        goto done;
    }
    // A subscriber connects by default; libzmq keeps retrying in the
    // background, so it may start before the publisher.
    sub = lz_sub_new(ctx, endpoint);
    if (!sub) {
        fprintf(stderr, "subscriber on %s: %s\n", endpoint, lz_last_error());
        goto done;
    }
    // lz_sub_on both subscribes to the prefix and routes it to the handler.
    for (int i = 0; i < topic_count; i++) {
        int rc = lz_sub_on(sub, topics[i], on_weather, &tally);
        if (rc != LZ_OK) {
            fprintf(stderr, "subscribe %s: %s (%s)\n", topics[i], lz_strerror(rc), lz_last_error());
            goto done;
        }
        printf("subscribed to \"%s\"\n", topics[i]);
    }
    int rc = lz_sub_start(sub); // handlers now run on the subscriber's threads
    if (rc != LZ_OK) {
        fprintf(stderr, "start: %s (%s)\n", lz_strerror(rc), lz_last_error());
        goto done;
    }
    printf("waiting for %ld readings from %s (Ctrl-C to stop)\n", count, endpoint);
    wait_for_readings(&tally);
    lz_sub_stop(sub); // waits for running handlers: the tally is final now

    if (tally.received > 0)
        printf("average temperature over %ld readings: %.1f °C\n", tally.received,
               tally.temperature_sum / (double)tally.received);

    lz_metrics_t m;
    char json[1024];
    if (lz_node_metrics(lz_sub_node(sub), &m) == LZ_OK && lz_metrics_to_json(&m, json, sizeof json) > 0)
        printf("subscriber metrics: %s\n", json);
    status = EXIT_SUCCESS; // complete, or stopped on purpose with Ctrl-C

done:
    lz_sub_destroy(&sub);
    lz_context_destroy(&ctx);
    pthread_cond_destroy(&tally.done);
    pthread_mutex_destroy(&tally.lock);
    return status;
}
